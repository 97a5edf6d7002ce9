package wal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/swapmeet/swapmeet/internal/consistency"
)

// SlotStatus is what an operator needs to know about the slot.
type SlotStatus struct {
	Name              string
	Database          string
	Active            bool
	ActivePID         int32  // the walsender's pid
	Leader            string // the streaming process's name (see Config.Name); "" when none
	ConfirmedFlushLSN string
	RestartLSN        string
	LagBytes          int64         // WAL written since the last acknowledgement
	RetainedBytes     int64         // WAL the server keeps for this slot
	WALStatus         string        // reserved, extended, unreserved or lost
	SafeWALSize       int64         // bytes until max_slot_wal_keep_size invalidates it; -1 = unlimited
	FlushLag          time.Duration // Postgres's own measure of acknowledgement delay
	// Server is the history the write Postgres follows, ReadSide the one
	// the projections pointer records (zero: not known). When they
	// differ, the CDC applies nothing until a rebuild.
	Server, ReadSide consistency.History
	LastReplyAge     time.Duration // since the reader last reported; -1 when not streaming
}

// ErrNoSlot means the slot does not exist.
var ErrNoSlot = errors.New("replication slot not found")

// Catalog views are outside what sqlc can type, so this query is plain pgx.
const slotStatusSQL = `
SELECT s.slot_name, s.database, s.active, coalesce(s.active_pid, 0),
       coalesce(s.confirmed_flush_lsn::text, ''), coalesce(s.restart_lsn::text, ''),
       coalesce((pg_current_wal_lsn() - s.confirmed_flush_lsn)::int8, 0),
       coalesce((pg_current_wal_lsn() - s.restart_lsn)::int8, 0),
       coalesce(s.wal_status, ''), coalesce(s.safe_wal_size, -1),
       coalesce(extract(epoch FROM r.flush_lag), 0)::float8,
       coalesce(extract(epoch FROM now() - r.reply_time), -1)::float8,
       coalesce(r.application_name, '') || coalesce(' from ' || host(r.client_addr), '')
FROM pg_replication_slots s
LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
WHERE s.slot_name = $1`

// ReadSlotStatus reads the slot's position, lag and retained WAL.
func ReadSlotStatus(ctx context.Context, pg *pgxpool.Pool, slot string) (SlotStatus, error) {
	var s SlotStatus
	var flushLag, replyAge float64
	err := pg.QueryRow(ctx, slotStatusSQL, slot).Scan(&s.Name, &s.Database, &s.Active, &s.ActivePID,
		&s.ConfirmedFlushLSN, &s.RestartLSN, &s.LagBytes, &s.RetainedBytes, &s.WALStatus, &s.SafeWALSize, &flushLag, &replyAge, &s.Leader)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, fmt.Errorf("%w: %s", ErrNoSlot, slot)
	}
	if err != nil {
		return s, fmt.Errorf("read slot %s: %w", slot, err)
	}
	s.FlushLag = time.Duration(flushLag * float64(time.Second))
	s.LastReplyAge = time.Duration(replyAge * float64(time.Second))
	if replyAge < 0 {
		s.LastReplyAge = -1
	}
	return s, nil
}

// Print writes the status for a terminal.
// HistoryMoved reports that the write Postgres follows another history
// than the read side.
func (s SlotStatus) HistoryMoved() bool {
	return !s.Server.IsZero() && !s.ReadSide.IsZero() && s.Server != s.ReadSide
}

func (s SlotStatus) Print(w io.Writer) {
	state := "inactive (no reader connected)"
	if s.Active {
		state = fmt.Sprintf("active (walsender pid %d)", s.ActivePID)
	}
	fmt.Fprintf(w, "slot            %s on database %s\n", s.Name, s.Database)
	fmt.Fprintf(w, "state           %s, wal_status %s\n", state, s.WALStatus)
	if s.Leader != "" {
		fmt.Fprintf(w, "leader          %s\n", s.Leader)
	}
	switch {
	case s.Server.IsZero():
	case !s.HistoryMoved():
		fmt.Fprintf(w, "history         %s (system identifier/timeline)\n", s.Server)
	default:
		fmt.Fprintf(w, "history         the write Postgres follows %s, the read side %s: the CDC applies nothing until `swapmeet projections rebuild` moves the read side onto it\n", s.Server, s.ReadSide)
	}
	fmt.Fprintf(w, "confirmed flush %s\n", s.ConfirmedFlushLSN)
	fmt.Fprintf(w, "restart         %s\n", s.RestartLSN)
	fmt.Fprintf(w, "lag             %s behind the server's WAL, flush lag %s\n", bytesHuman(s.LagBytes), s.FlushLag.Round(time.Millisecond))
	if s.LastReplyAge >= 0 {
		fmt.Fprintf(w, "last report     %s ago\n", s.LastReplyAge.Round(time.Millisecond))
	}
	fmt.Fprintf(w, "retained WAL    %s", bytesHuman(s.RetainedBytes))
	if s.SafeWALSize >= 0 {
		fmt.Fprintf(w, " (%s more before the slot is invalidated)", bytesHuman(s.SafeWALSize))
	}
	fmt.Fprintln(w)
}

func bytesHuman(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
