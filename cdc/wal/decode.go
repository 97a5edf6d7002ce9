package wal

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

// Change is one decoded row change. It is valid only during the Batch.Add
// call that receives it: its column values point into the receive buffer,
// which the next message overwrites. A batch keeps what it needs (a few
// keys) and nothing of the row, so a transaction of any size costs memory
// in proportion to the documents it touches, never to its row bytes.
type Change struct {
	Table string
	Op    Op
	rel   *relation
	New   *pglogrepl.TupleData // nil for deletes and truncates
	Old   *pglogrepl.TupleData // the old key or row, when the server sent one

	// CommitLSN and CommitTime are the transaction's, known from its
	// BEGIN; Seq is the change's ordinal in the transaction, from 1. A
	// replay gives the same change the same three.
	CommitLSN  pglogrepl.LSN
	CommitTime time.Time
	Seq        int
}

// Commit describes one committed transaction, as far as our publication
// sees it.
type Commit struct {
	Xid        uint32
	CommitLSN  pglogrepl.LSN // where the commit record starts
	EndLSN     pglogrepl.LSN // where it ends: what we acknowledge
	CommitTime time.Time
	Changes    int // row changes the transaction carried
}

// Batch gathers what a run of consecutive committed transactions touches,
// as their changes arrive. The reader fills it; the sink applies it.
type Batch interface {
	// Add records one row change of the open transaction.
	Add(c *Change)
	// Commit closes the open transaction.
	Commit(c Commit)
	// Size is what the batch holds, in documents: the reader closes a
	// batch at a transaction boundary once it is this big.
	Size() int
}

// Annotated is a Batch that reads the transactional logical decoding
// messages (pg_logical_emit_message) of its transactions: Annotate is
// called, in the transaction's order, before the changes that follow the
// message. content is valid only during the call.
type Annotated interface {
	Annotate(prefix string, content []byte)
}

type relation struct {
	msg   *pglogrepl.RelationMessage
	index map[string]int
}

// Text returns a column's value as pgoutput sent it, preferring the new row.
// ok is false when the column is NULL, unchanged TOAST, or not in the message.
func (c *Change) Text(column string) (s string, ok bool) {
	if s, ok := c.NewText(column); ok {
		return s, true
	}
	return c.OldText(column)
}

// NewText is Text for the new row only.
func (c *Change) NewText(column string) (string, bool) {
	b, ok := c.value(c.New, column)
	return string(b), ok
}

// OldText is Text for the old row only: the value before an update.
func (c *Change) OldText(column string) (string, bool) {
	b, ok := c.value(c.Old, column)
	return string(b), ok
}

// Same reports whether an update kept a column's value. Without the old
// row (no REPLICA IDENTITY FULL) it cannot tell, and says no.
func (c *Change) Same(column string) bool {
	old, ok1 := c.value(c.Old, column)
	cur, ok2 := c.value(c.New, column)
	return ok1 && ok2 && string(old) == string(cur)
}

// Unchanged reports whether the new row leaves the column as it was
// without sending it: an unchanged TOASTed value of an update.
func (c *Change) Unchanged(column string) bool {
	i, found := c.rel.index[column]
	return found && c.New != nil && i < len(c.New.Columns) && c.New.Columns[i].DataType == pglogrepl.TupleDataTypeToast
}

// Value is Text without the copy: the bytes point into the receive
// buffer, so they are valid only during the Batch.Add call.
func (c *Change) Value(column string) ([]byte, bool) {
	if v, ok := c.value(c.New, column); ok {
		return v, true
	}
	return c.value(c.Old, column)
}

// OldValue is Value for the old row only.
func (c *Change) OldValue(column string) ([]byte, bool) { return c.value(c.Old, column) }

// NewChange makes the Change the decoder would for a row of a table with
// the given columns, for feeding a Batch without a server.
func NewChange(table string, columns []string, op Op, newT, oldT *pglogrepl.TupleData) *Change {
	r := &relation{msg: &pglogrepl.RelationMessage{RelationName: table}, index: make(map[string]int, len(columns))}
	for i, c := range columns {
		r.msg.Columns = append(r.msg.Columns, &pglogrepl.RelationMessageColumn{Name: c})
		r.index[c] = i
	}
	return &Change{Table: table, Op: op, rel: r, New: newT, Old: oldT}
}

func (c *Change) value(t *pglogrepl.TupleData, column string) ([]byte, bool) {
	i, found := c.rel.index[column]
	if !found || t == nil || i >= len(t.Columns) || t.Columns[i].DataType != pglogrepl.TupleDataTypeText {
		return nil, false
	}
	return t.Columns[i].Data, true
}

// decoder feeds pgoutput messages into a batch, one transaction at a time.
type decoder struct {
	relations map[uint32]*relation
	open      *Commit // the transaction being received
	change    Change  // reused for every row change
}

func newDecoder() *decoder { return &decoder{relations: map[uint32]*relation{}} }

// inTxn reports whether a transaction has begun but not committed.
func (d *decoder) inTxn() bool { return d.open != nil }

// decode consumes one pgoutput message into b. It returns the transaction
// when the message was its COMMIT. walData may be reused once it returns.
func (d *decoder) decode(walData []byte, b Batch) (*Commit, error) {
	msg, err := pglogrepl.Parse(walData)
	if err != nil {
		return nil, fmt.Errorf("parse pgoutput message: %w", err)
	}
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		// Parse copies names into strings, so the relation outlives walData.
		r := &relation{msg: m, index: make(map[string]int, len(m.Columns))}
		for i, c := range m.Columns {
			r.index[c.Name] = i
		}
		d.relations[m.RelationID] = r
	case *pglogrepl.BeginMessage:
		if d.open != nil {
			return nil, fmt.Errorf("BEGIN of xid %d inside xid %d", m.Xid, d.open.Xid)
		}
		d.open = &Commit{Xid: m.Xid, CommitLSN: m.FinalLSN, CommitTime: m.CommitTime}
	case *pglogrepl.CommitMessage:
		if d.open == nil {
			return nil, fmt.Errorf("COMMIT at %s without BEGIN", m.CommitLSN)
		}
		c := d.open
		d.open = nil
		c.CommitLSN, c.EndLSN, c.CommitTime = m.CommitLSN, m.TransactionEndLSN, m.CommitTime
		b.Commit(*c)
		return c, nil
	case *pglogrepl.InsertMessage:
		return nil, d.add(b, m.RelationID, OpInsert, m.Tuple, nil)
	case *pglogrepl.UpdateMessage:
		return nil, d.add(b, m.RelationID, OpUpdate, m.NewTuple, m.OldTuple)
	case *pglogrepl.DeleteMessage:
		return nil, d.add(b, m.RelationID, OpDelete, nil, m.OldTuple)
	case *pglogrepl.TruncateMessage:
		for _, id := range m.RelationIDs {
			if err := d.add(b, id, OpTruncate, nil, nil); err != nil {
				return nil, err
			}
		}
	case *pglogrepl.LogicalDecodingMessage:
		// A message outside a transaction (non-transactional) belongs to
		// none: no row change carries it.
		if a, ok := b.(Annotated); ok && m.Transactional && d.open != nil {
			a.Annotate(m.Prefix, m.Content)
		}
	case *pglogrepl.TypeMessage, *pglogrepl.OriginMessage:
		// Custom types and replication origins do not affect projections.
	default:
		return nil, fmt.Errorf("unexpected pgoutput message %T", msg)
	}
	return nil, nil
}

// reset forgets a transaction cut off by a lost connection: the server
// sends it again whole.
func (d *decoder) reset() { d.open = nil }

func (d *decoder) add(b Batch, relID uint32, op Op, newT, oldT *pglogrepl.TupleData) error {
	if d.open == nil {
		return fmt.Errorf("row change outside a transaction")
	}
	r, ok := d.relations[relID]
	if !ok {
		return fmt.Errorf("row change for unknown relation %d", relID)
	}
	d.open.Changes++
	d.change = Change{Table: r.msg.RelationName, Op: op, rel: r, New: newT, Old: oldT,
		CommitLSN: d.open.CommitLSN, CommitTime: d.open.CommitTime, Seq: d.open.Changes}
	b.Add(&d.change)
	d.change = Change{}
	return nil
}
