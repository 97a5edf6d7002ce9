package cdc

import (
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
)

// Op is the kind of a row change.
type Op byte

const (
	OpInsert   Op = 'I'
	OpUpdate   Op = 'U'
	OpDelete   Op = 'D'
	OpTruncate Op = 'T'
)

// Change is one decoded row change. Column values stay in pgoutput's text
// form until asked for: projectors need a few keys, not whole rows.
type Change struct {
	Table string
	Op    Op
	rel   *relation
	New   *pglogrepl.TupleData // nil for deletes and truncates
	Old   *pglogrepl.TupleData // the old key or row, when the server sent one
}

// Txn is one committed transaction, as far as our publication sees it.
type Txn struct {
	Xid        uint32
	CommitLSN  pglogrepl.LSN // where the commit record starts
	EndLSN     pglogrepl.LSN // where it ends: what we acknowledge
	CommitTime time.Time
	Changes    []Change
}

type relation struct {
	msg   *pglogrepl.RelationMessage
	index map[string]int
}

// Text returns a column's value as pgoutput sent it, preferring the new row.
// ok is false when the column is NULL, unchanged TOAST, or not in the message.
func (c *Change) Text(column string) (s string, ok bool) {
	i, found := c.rel.index[column]
	if !found {
		return "", false
	}
	for _, t := range []*pglogrepl.TupleData{c.New, c.Old} {
		if t == nil || i >= len(t.Columns) {
			continue
		}
		if col := t.Columns[i]; col.DataType == pglogrepl.TupleDataTypeText {
			return string(col.Data), true
		}
	}
	return "", false
}

// NewText is Text for the new row only.
func (c *Change) NewText(column string) (string, bool) {
	i, found := c.rel.index[column]
	if !found || c.New == nil || i >= len(c.New.Columns) || c.New.Columns[i].DataType != pglogrepl.TupleDataTypeText {
		return "", false
	}
	return string(c.New.Columns[i].Data), true
}

// OldText is Text for the old row only: the value before an update.
func (c *Change) OldText(column string) (string, bool) {
	i, found := c.rel.index[column]
	if !found || c.Old == nil || i >= len(c.Old.Columns) || c.Old.Columns[i].DataType != pglogrepl.TupleDataTypeText {
		return "", false
	}
	return string(c.Old.Columns[i].Data), true
}

// decoder assembles pgoutput messages into transactions.
type decoder struct {
	relations map[uint32]*relation
	cur       *Txn
}

func newDecoder() *decoder { return &decoder{relations: map[uint32]*relation{}} }

// inTxn reports whether a transaction has begun but not committed.
func (d *decoder) inTxn() bool { return d.cur != nil }

// decode consumes one pgoutput message. It returns the transaction when
// the message was its COMMIT. walData must not be reused by the caller.
func (d *decoder) decode(walData []byte) (*Txn, error) {
	msg, err := pglogrepl.Parse(walData)
	if err != nil {
		return nil, fmt.Errorf("parse pgoutput message: %w", err)
	}
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		r := &relation{msg: m, index: make(map[string]int, len(m.Columns))}
		for i, c := range m.Columns {
			r.index[c.Name] = i
		}
		d.relations[m.RelationID] = r
	case *pglogrepl.BeginMessage:
		if d.cur != nil {
			return nil, fmt.Errorf("BEGIN of xid %d inside xid %d", m.Xid, d.cur.Xid)
		}
		d.cur = &Txn{Xid: m.Xid, CommitTime: m.CommitTime}
	case *pglogrepl.CommitMessage:
		if d.cur == nil {
			return nil, fmt.Errorf("COMMIT at %s without BEGIN", m.CommitLSN)
		}
		t := d.cur
		d.cur = nil
		t.CommitLSN, t.EndLSN, t.CommitTime = m.CommitLSN, m.TransactionEndLSN, m.CommitTime
		return t, nil
	case *pglogrepl.InsertMessage:
		return nil, d.add(m.RelationID, OpInsert, m.Tuple, nil)
	case *pglogrepl.UpdateMessage:
		return nil, d.add(m.RelationID, OpUpdate, m.NewTuple, m.OldTuple)
	case *pglogrepl.DeleteMessage:
		return nil, d.add(m.RelationID, OpDelete, nil, m.OldTuple)
	case *pglogrepl.TruncateMessage:
		for _, id := range m.RelationIDs {
			if err := d.add(id, OpTruncate, nil, nil); err != nil {
				return nil, err
			}
		}
	case *pglogrepl.TypeMessage, *pglogrepl.OriginMessage:
		// Custom types and replication origins do not affect projections.
	default:
		return nil, fmt.Errorf("unexpected pgoutput message %T", msg)
	}
	return nil, nil
}

func (d *decoder) add(relID uint32, op Op, newT, oldT *pglogrepl.TupleData) error {
	if d.cur == nil {
		return fmt.Errorf("row change outside a transaction")
	}
	r, ok := d.relations[relID]
	if !ok {
		return fmt.Errorf("row change for unknown relation %d", relID)
	}
	d.cur.Changes = append(d.cur.Changes, Change{Table: r.msg.RelationName, Op: op, rel: r, New: newT, Old: oldT})
	return nil
}
