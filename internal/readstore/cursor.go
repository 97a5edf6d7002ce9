package readstore

import "time"

// Cursor is the position after the last item of a page: what a page
// token carries (the price only for the listings' price sorts).
type Cursor struct {
	CreatedAt time.Time
	Price     int64
	ID        string
}
