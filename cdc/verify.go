package cdc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/swapmeet/swapmeet/cdc/projection"
	"github.com/swapmeet/swapmeet/db/sqlc"
	"github.com/swapmeet/swapmeet/internal/readstore"
	"github.com/swapmeet/swapmeet/internal/search"
)

// Drift is how one collection differs from what Postgres implies.
type Drift struct {
	Collection string
	Checked    int      // documents Postgres implies
	Missing    []string // ids with no document
	Extra      []string // documents with no row
	Differ     []string // "id: field, field" for documents that differ
}

// Clean reports whether the collection matches Postgres.
func (d Drift) Clean() bool { return len(d.Missing)+len(d.Extra)+len(d.Differ) == 0 }

// Verify rebuilds every document of the named collections from one
// Postgres snapshot and compares it with the stored one, ignoring lsn.
// Run it when the CDC has caught up: documents it has not applied yet
// show as drift.
func Verify(ctx context.Context, pg *pgxpool.Pool, reads *readstore.Model, collections []string) ([]Drift, error) {
	tx, err := pg.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only
	q := sqlc.New(tx)
	var out []Drift
	for _, c := range collections {
		d, err := verifyCollection(ctx, q, reads, projection.For(c))
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// verifyPage is how many documents one Postgres read rebuilds, as in the
// projector's pages.
const verifyPage = 200

func verifyCollection(ctx context.Context, q *sqlc.Queries, reads *readstore.Model, proj projection.Collection) (Drift, error) {
	d := Drift{Collection: proj.Name()}
	// One pass over the stored documents, keeping a digest of each: the
	// store is read once, without sorting, whatever its size.
	stored := map[string][32]byte{}
	err := reads.Each(ctx, proj.Name(), func(raw bson.Raw) error {
		id, _ := raw.Lookup("_id").StringValueOK()
		doc := reflect.New(proj.DocType())
		if err := bson.Unmarshal(raw, doc.Interface()); err != nil {
			stored[id] = [32]byte{} // never equal to a real digest
			return nil
		}
		stored[id] = docDigest(doc.Elem().Interface())
		return nil
	})
	if err != nil {
		return d, err
	}
	after := uuid.Nil
	for {
		ids, err := proj.IDs(ctx, q, after, verifyPage)
		if err != nil {
			return d, fmt.Errorf("list %s: %w", proj.Name(), err)
		}
		if len(ids) == 0 {
			break
		}
		after = ids[len(ids)-1]
		want, err := proj.Build(ctx, q, ids, 0)
		if err != nil {
			return d, err
		}
		for _, id := range ids {
			d.Checked++
			key := id.String()
			sum, ok := stored[key]
			delete(stored, key)
			switch {
			case !ok:
				d.Missing = append(d.Missing, key)
			case sum != docDigest(want[id]):
				raw, err := reads.FindRaw(ctx, proj.Name(), key)
				if err != nil {
					return d, err
				}
				d.Differ = append(d.Differ, key+": "+strings.Join(differingFields(want[id], raw), ", "))
			}
		}
	}
	for id := range stored {
		d.Extra = append(d.Extra, id)
	}
	sort.Strings(d.Extra)
	return d, nil
}

// docDigest identifies a document's content, lsn aside, in its canonical
// form.
func docDigest(doc any) [32]byte {
	b, err := canonical(doc)
	if err != nil {
		return [32]byte{}
	}
	return sha256.Sum256(b)
}

// canonical encodes a document so that equal content gives equal bytes:
// lsn is zeroed, and maps (Listing.Attributes) are written with their
// keys sorted, where bson.Marshal follows Go's random map order. Struct
// fields keep the order of their type, and arrays theirs, which the
// projections fix (ORDER BY, sorted pairs); values keep their BSON types,
// which both sides take from the same Go type.
func canonical(doc any) (bson.Raw, error) {
	v := reflect.ValueOf(doc)
	c := reflect.New(v.Type()).Elem()
	c.Set(v)
	if f := c.FieldByName("LSN"); f.IsValid() {
		f.SetInt(0)
	}
	var buf bytes.Buffer
	enc := bson.NewEncoder(bson.NewDocumentWriter(&buf))
	enc.SetRegistry(canonicalRegistry)
	if err := enc.Encode(c.Interface()); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// canonicalRegistry is the default registry, except that it writes maps
// as documents with sorted keys.
var canonicalRegistry = func() *bson.Registry {
	r := bson.NewRegistry()
	r.RegisterKindEncoder(reflect.Map, bson.ValueEncoderFunc(encodeSortedMap))
	return r
}()

func encodeSortedMap(ec bson.EncodeContext, vw bson.ValueWriter, val reflect.Value) error {
	if val.Kind() != reflect.Map || val.Type().Key().Kind() != reflect.String {
		return fmt.Errorf("canonical form: cannot encode %s", val.Type())
	}
	if val.IsNil() {
		return vw.WriteNull()
	}
	d := make(bson.D, 0, val.Len())
	for it := val.MapRange(); it.Next(); {
		d = append(d, bson.E{Key: it.Key().String(), Value: it.Value().Interface()})
	}
	sort.Slice(d, func(i, j int) bool { return d[i].Key < d[j].Key })
	enc, err := ec.LookupEncoder(reflect.TypeFor[bson.D]())
	if err != nil {
		return err
	}
	return enc.EncodeValue(ec, vw, reflect.ValueOf(d))
}

// differingFields compares a built document with a stored one, field by
// field, after decoding the stored one into the same type (which erases
// encoding differences), both in the canonical form that docDigest
// hashes, so that a document whose digest differs names at least one
// field.
func differingFields(want any, raw bson.Raw) []string {
	got := reflect.New(reflect.TypeOf(want))
	if err := bson.Unmarshal(raw, got.Interface()); err != nil {
		return []string{"(undecodable: " + err.Error() + ")"}
	}
	wantRaw, err1 := canonical(want)
	gotRaw, err2 := canonical(got.Elem().Interface())
	if err1 != nil || err2 != nil {
		return []string{"(unencodable)"}
	}
	wantEls, _ := wantRaw.Elements()
	gotEls, _ := gotRaw.Elements()
	gotByKey := map[string]bson.RawValue{}
	for _, e := range gotEls {
		gotByKey[e.Key()] = e.Value()
	}
	var out []string
	for _, e := range wantEls {
		g, ok := gotByKey[e.Key()]
		if !ok || !bytes.Equal(g.Value, e.Value().Value) || g.Type != e.Value().Type {
			out = append(out, e.Key())
		}
	}
	return out
}

// PrintDrift writes a report and reports whether every collection is clean.
func PrintDrift(w io.Writer, drifts []Drift) bool {
	clean := true
	for _, d := range drifts {
		status := "ok"
		if !d.Clean() {
			status = "DRIFT"
			clean = false
		}
		fmt.Fprintf(w, "%-9s %-5s checked %d, missing %d, extra %d, differing %d\n",
			d.Collection, status, d.Checked, len(d.Missing), len(d.Extra), len(d.Differ))
		for _, s := range limit(d.Missing, 5) {
			fmt.Fprintf(w, "  missing  %s\n", s)
		}
		for _, s := range limit(d.Extra, 5) {
			fmt.Fprintf(w, "  extra    %s\n", s)
		}
		for _, s := range limit(d.Differ, 5) {
			fmt.Fprintf(w, "  differs  %s\n", s)
		}
	}
	return clean
}

func limit(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("… and %d more", len(s)-n))
	}
	return s
}

// SearchCollection names the search projection in a Drift.
const SearchCollection = "search"

// VerifySearch compares the search store's live generation with the
// listings, orders and reviews one Postgres snapshot implies, row by row
// in id order, the position aside. Order and review ids are reported as
// "orders/<id>" and "reviews/<id>". Like Verify, run it when the CDC has
// caught up.
func VerifySearch(ctx context.Context, pg *pgxpool.Pool, s *search.Store) (Drift, error) {
	d := Drift{Collection: SearchCollection}
	live, err := s.Live(ctx)
	if err != nil {
		return d, err
	}
	tx, err := pg.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return d, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only
	q := sqlc.New(tx)
	err = verifySearchRows(ctx, q, &d, projection.For(readstore.Listings), "",
		func(after string) ([]search.Listing, error) { return s.Rows(ctx, live.ID, after, verifyPage) },
		func(l search.Listing) string { return l.ID },
		func(doc any, got search.Listing) []string {
			return searchDiff(search.FromDocument(doc.(readstore.Listing)), got)
		})
	if err == nil {
		err = verifySearchRows(ctx, q, &d, projection.For(readstore.Orders), "orders/",
			func(after string) ([]readstore.Order, error) { return s.OrderRows(ctx, live.ID, after, verifyPage) },
			func(o readstore.Order) string { return o.ID }, ownerDiff)
	}
	if err == nil {
		err = verifySearchRows(ctx, q, &d, projection.For(readstore.Reviews), "reviews/",
			func(after string) ([]readstore.Review, error) { return s.ReviewRows(ctx, live.ID, after, verifyPage) },
			func(r readstore.Review) string { return r.ID }, ownerDiff)
	}
	if err == nil {
		err = verifyCategoryCounts(ctx, q, s, live.ID, &d)
	}
	return d, err
}

// verifyCategoryCounts compares the category counts, which batches move
// rather than recount, with Postgres's.
func verifyCategoryCounts(ctx context.Context, q *sqlc.Queries, s *search.Store, g int64, d *Drift) error {
	want, err := q.CountAvailableByCategory(ctx)
	if err != nil {
		return fmt.Errorf("count listings by category: %w", err)
	}
	got, err := s.CategoryCounts(ctx, g)
	if err != nil {
		return err
	}
	for _, c := range want {
		if got[c.Category] != c.Available {
			d.Differ = append(d.Differ, fmt.Sprintf("category %q: %d available, Postgres has %d", c.Category, got[c.Category], c.Available))
		}
		delete(got, c.Category)
	}
	for name, n := range got {
		if n != 0 {
			d.Differ = append(d.Differ, fmt.Sprintf("category %q: %d available, Postgres has none", name, n))
		}
	}
	return nil
}

// verifySearchRows merges two id-ordered streams, a page of each at a
// time: the documents proj builds from the snapshot, and the stored rows
// that next pages through.
func verifySearchRows[T any](ctx context.Context, q *sqlc.Queries, d *Drift, proj projection.Collection, prefix string,
	next func(after string) ([]T, error), idOf func(T) string, diff func(doc any, got T) []string) error {
	var (
		rows    []T
		rowsEnd bool
		lastRow string
	)
	nextRow := func() (*T, error) {
		if len(rows) == 0 && !rowsEnd {
			var err error
			if rows, err = next(lastRow); err != nil {
				return nil, err
			}
			if len(rows) == 0 {
				rowsEnd = true
			} else {
				lastRow = idOf(rows[len(rows)-1])
			}
		}
		if len(rows) == 0 {
			return nil, nil
		}
		return &rows[0], nil
	}
	after := uuid.Nil
	for {
		ids, err := proj.IDs(ctx, q, after, verifyPage)
		if err != nil {
			return fmt.Errorf("list %s: %w", proj.Name(), err)
		}
		if len(ids) == 0 {
			break
		}
		after = ids[len(ids)-1]
		docs, err := proj.Build(ctx, q, ids, 0)
		if err != nil {
			return err
		}
		for _, id := range ids {
			doc, ok := docs[id]
			if !ok {
				continue
			}
			d.Checked++
			key := id.String()
			for {
				r, err := nextRow()
				if err != nil {
					return err
				}
				if r == nil || idOf(*r) >= key {
					break
				}
				d.Extra = append(d.Extra, prefix+idOf(*r))
				rows = rows[1:]
			}
			r, err := nextRow()
			if err != nil {
				return err
			}
			if r == nil || idOf(*r) != key {
				d.Missing = append(d.Missing, prefix+key)
				continue
			}
			if fields := diff(doc, *r); len(fields) > 0 {
				d.Differ = append(d.Differ, prefix+key+": "+strings.Join(fields, ", "))
			}
			rows = rows[1:]
		}
	}
	for {
		r, err := nextRow()
		if err != nil {
			return err
		}
		if r == nil {
			return nil
		}
		d.Extra = append(d.Extra, prefix+idOf(*r))
		rows = rows[1:]
	}
}

// ownerDiff names the fields in which a stored order or review differs
// from the document built from Postgres, compared as Verify compares
// documents.
func ownerDiff[T any](want any, got T) []string {
	if docDigest(want) == docDigest(got) {
		return nil
	}
	raw, err := bson.Marshal(got)
	if err != nil {
		return []string{"(unencodable)"}
	}
	return differingFields(want, raw)
}

// searchDiff names the fields in which a stored search row differs from
// the row built from Postgres, the position aside.
func searchDiff(want, got search.Listing) []string {
	want.LSN, got.LSN = 0, 0
	norm := func(l *search.Listing) {
		if len(l.Attributes) == 0 {
			l.Attributes = nil
		}
		if len(l.Media) == 0 {
			l.Media = nil
		}
		l.CreatedAt, l.UpdatedAt = l.CreatedAt.UTC(), l.UpdatedAt.UTC()
	}
	norm(&want)
	norm(&got)
	var out []string
	w, g := reflect.ValueOf(want), reflect.ValueOf(got)
	for i := range w.NumField() {
		if !reflect.DeepEqual(w.Field(i).Interface(), g.Field(i).Interface()) {
			out = append(out, w.Type().Field(i).Name)
		}
	}
	return out
}
