package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/itest"
)

// TestReadYourWritesAcrossReplicasWithTheNearCache: three `swapmeet
// serve` processes with their near caches on, and the CDC. Round after
// round, one replica reads a listing (so its near cache holds the current
// version), another updates it, and the first reads it with the update's
// consistency token: it must get the update, every time, and find it in
// a search of the seller's listings with the same token (and, every 60
// rounds, the seller's new name after a rename). Meanwhile
// readers without tokens keep every near cache busy with fills that race
// the CDC's announcements.
func TestReadYourWritesAcrossReplicasWithTheNearCache(t *testing.T) {
	const (
		listings = 8
		rounds   = 240
		readers  = 3
	)
	e := itest.New(t)
	e.StartCDC(t)
	env := []string{"SWAPMEET_LIMIT_WRITES_PER_CLIENT=0", "SWAPMEET_LIMIT_QUERIES_PER_CLIENT=0", "SWAPMEET_NEAR_CACHE_ENTRIES=10000"}
	rs := []replica{startReplica(t, e, "replica a", env...), startReplica(t, e, "replica b", env...), startReplica(t, e, "replica c", env...)}
	ctx := context.Background()

	up, err := rs[0].users.SignUp(ctx, connect.NewRequest(&swapmeetv1.SignUpRequest{
		Email: "near@example.com", Password: "correct horse battery", DisplayName: "Ada",
	}))
	if err != nil {
		t.Fatal(err)
	}
	session := up.Msg.SessionToken
	ids := make([]string, listings)
	versions := make([]int64, listings)
	for i := range ids {
		res, err := rs[i%3].listings.CreateListing(ctx, bearer(&swapmeetv1.CreateListingRequest{
			Title: fmt.Sprintf("Lamp %d", i), Description: "Brass.", Category: "electronics",
			Condition: swapmeetv1.Condition_CONDITION_GOOD, Price: &swapmeetv1.Money{CurrencyCode: "EUR", AmountMinor: 2500},
		}, session))
		if err != nil {
			t.Fatal(err)
		}
		ids[i], versions[i] = res.Msg.ListingId, 1
		if _, err := rs[(i+1)%3].listings.GetListing(ctx, connect.NewRequest(&swapmeetv1.GetListingRequest{ListingId: ids[i], ConsistencyToken: res.Msg.ConsistencyToken})); err != nil {
			t.Fatal(err)
		}
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var background atomic.Int64
	for g := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(g), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := rs[rnd.IntN(len(rs))]
				var err error
				if rnd.IntN(4) == 0 {
					_, err = r.listings.SearchListings(ctx, connect.NewRequest(&swapmeetv1.SearchListingsRequest{SellerId: up.Msg.UserId, PageSize: listings}))
				} else {
					_, err = r.listings.GetListing(ctx, connect.NewRequest(&swapmeetv1.GetListingRequest{ListingId: ids[rnd.IntN(len(ids))]}))
				}
				if err != nil {
					t.Errorf("a read without a token through %s: %v", r.name, err)
					return
				}
				background.Add(1)
			}
		}()
	}

	stale := 0
	for round := range rounds {
		i := round % listings
		writer, reader := rs[round%3], rs[(round+1+round/3)%3]
		if writer.name == reader.name {
			reader = rs[(round+2)%3]
		}
		// The reader's near cache holds the current version.
		if _, err := reader.listings.GetListing(ctx, connect.NewRequest(&swapmeetv1.GetListingRequest{ListingId: ids[i]})); err != nil {
			t.Fatal(err)
		}
		title := fmt.Sprintf("Lamp %d, round %d", i, round)
		res, err := writer.listings.UpdateListing(ctx, bearer(&swapmeetv1.UpdateListingRequest{
			ListingId: ids[i], ExpectedVersion: versions[i], Title: title,
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"title"}},
		}, session))
		if err != nil {
			t.Fatalf("round %d: update through %s: %v", round, writer.name, err)
		}
		versions[i] = res.Msg.Version
		got, err := reader.listings.GetListing(ctx, connect.NewRequest(&swapmeetv1.GetListingRequest{ListingId: ids[i], ConsistencyToken: res.Msg.ConsistencyToken}))
		if err != nil {
			t.Fatalf("round %d: read through %s with the token: %v", round, reader.name, err)
		}
		if l := got.Msg.GetListing(); l.GetTitle() != title || l.GetVersion() != versions[i] {
			stale++
			t.Errorf("round %d: written through %s, read through %s with the token: version %d %q, want %d %q",
				round, writer.name, reader.name, l.GetVersion(), l.GetTitle(), versions[i], title)
		}
		// The seller's listings, searched with the token (the page epoch
		// and the page go through the near cache too).
		page, err := reader.listings.SearchListings(ctx, connect.NewRequest(&swapmeetv1.SearchListingsRequest{
			SellerId: up.Msg.UserId, PageSize: listings, ConsistencyToken: res.Msg.ConsistencyToken,
		}))
		if err != nil {
			t.Fatalf("round %d: search through %s with the token: %v", round, reader.name, err)
		}
		found := ""
		for _, l := range page.Msg.GetListings() {
			if l.GetListingId() == ids[i] {
				found = l.GetTitle()
			}
		}
		if found != title {
			stale++
			t.Errorf("round %d: written through %s, searched through %s with the token: %q, want %q", round, writer.name, reader.name, found, title)
		}
		if round%60 == 59 {
			// A rename rewrites every listing of the seller (a fan-out):
			// the seller's name in a search with its token is the new one.
			name := fmt.Sprintf("Ada, round %d", round)
			renamed, err := writer.users.UpdateProfile(ctx, bearer(&swapmeetv1.UpdateProfileRequest{DisplayName: &name}, session))
			if err != nil {
				t.Fatal(err)
			}
			page, err := reader.listings.SearchListings(ctx, connect.NewRequest(&swapmeetv1.SearchListingsRequest{
				SellerId: up.Msg.UserId, PageSize: listings, ConsistencyToken: renamed.Msg.ConsistencyToken,
			}))
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range page.Msg.GetListings() {
				if got := l.GetSeller().GetDisplayName(); got != name {
					stale++
					t.Errorf("round %d: renamed through %s, searched through %s with the token: seller %q, want %q", round, writer.name, reader.name, got, name)
					break
				}
			}
		}
	}
	close(stop)
	wg.Wait()

	var hits []string
	for _, r := range rs {
		n := scrape(t, r.metrics, `swapmeet_cache_lookups_total{kind="document",layer="near",result="hit"}`)
		if n == 0 {
			t.Errorf("%s served nothing from its near cache", r.name)
		}
		hits = append(hits, fmt.Sprintf("%s %.0f", r.name, n))
	}
	t.Logf("%d rounds, %d stale reads with a token; %d reads without one; near-cache hits: %v", rounds, stale, background.Load(), hits)
}

// scrape reads one series from a metrics endpoint; absent, it is 0.
func scrape(t *testing.T, url, series string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
