package readstore

import "time"

// The read documents. Each is shaped for a screen and carries copies of
// what it shows from other entities (a seller's name, an item's title), so
// that a read is one lookup. The CDC rebuilds the copies whenever their
// source changes.

// UserSummary is a user as other documents embed them.
type UserSummary struct {
	ID            string  `bson:"id"`
	DisplayName   string  `bson:"display_name"`
	RatingAverage float64 `bson:"rating_average"`
	RatingCount   int32   `bson:"rating_count"`
}

// User is the users document: a public profile with its seller statistics.
type User struct {
	ID                 string    `bson:"_id"`
	DisplayName        string    `bson:"display_name"`
	Bio                string    `bson:"bio"`
	JoinedAt           time.Time `bson:"joined_at"`
	RatingAverage      float64   `bson:"rating_average"`
	RatingCount        int32     `bson:"rating_count"`
	ActiveListingCount int32     `bson:"active_listing_count"`
	SoldCount          int32     `bson:"sold_count"`
	LSN                int64     `bson:"lsn"`
}

// Money is an amount in minor units.
type Money struct {
	Currency string `bson:"currency"`
	Minor    int64  `bson:"minor"`
}

// Media is a confirmed image: object keys, never URLs, which are made
// (and expire) at read time.
type Media struct {
	ID           string `bson:"id"`
	ContentType  string `bson:"content_type"`
	SizeBytes    int64  `bson:"size_bytes"`
	Width        int32  `bson:"width"`
	Height       int32  `bson:"height"`
	ObjectKey    string `bson:"object_key"`
	ThumbnailKey string `bson:"thumbnail_key"`
}

// Listing is the listings document.
type Listing struct {
	ID          string            `bson:"_id"`
	Seller      UserSummary       `bson:"seller"`
	Title       string            `bson:"title"`
	Description string            `bson:"description"`
	Category    string            `bson:"category"`
	Condition   string            `bson:"condition"`
	Price       Money             `bson:"price"`
	Attributes  map[string]string `bson:"attributes"`
	Status      string            `bson:"status"`
	Version     int64             `bson:"version"`
	Media       []Media           `bson:"media"`
	CreatedAt   time.Time         `bson:"created_at"`
	UpdatedAt   time.Time         `bson:"updated_at"`
	LSN         int64             `bson:"lsn"`
}

// Order is the orders document.
type Order struct {
	ID        string         `bson:"_id"`
	Buyer     UserSummary    `bson:"buyer"`
	Seller    UserSummary    `bson:"seller"`
	Status    string         `bson:"status"`
	Total     Money          `bson:"total"`
	Items     []OrderItem    `bson:"items"`
	History   []StatusChange `bson:"history"`
	CreatedAt time.Time      `bson:"created_at"`
	UpdatedAt time.Time      `bson:"updated_at"`
	LSN       int64          `bson:"lsn"`
}

// OrderItem is what was bought, as it was at purchase.
type OrderItem struct {
	ListingID         string `bson:"listing_id"`
	Title             string `bson:"title"`
	Price             Money  `bson:"price"`
	SellerDisplayName string `bson:"seller_display_name"`
	Thumbnail         *Media `bson:"thumbnail"`
}

// StatusChange is one step of an order's history.
type StatusChange struct {
	Status string    `bson:"status"`
	At     time.Time `bson:"at"`
}

// Review is the reviews document.
type Review struct {
	ID        string      `bson:"_id"`
	OrderID   string      `bson:"order_id"`
	SellerID  string      `bson:"seller_id"`
	Author    UserSummary `bson:"author"`
	Rating    int32       `bson:"rating"`
	Comment   string      `bson:"comment"`
	CreatedAt time.Time   `bson:"created_at"`
	LSN       int64       `bson:"lsn"`
}

// Collection names.
const (
	Users    = "users"
	Listings = "listings"
	Orders   = "orders"
	Reviews  = "reviews"
)

// Collections lists every projected collection.
var Collections = []string{Users, Listings, Orders, Reviews}

// Stamp implements Stamped.
func (d User) Stamp() int64 { return d.LSN }

// Stamp implements Stamped.
func (d Listing) Stamp() int64 { return d.LSN }

// Stamp implements Stamped.
func (d Order) Stamp() int64 { return d.LSN }

// Stamp implements Stamped.
func (d Review) Stamp() int64 { return d.LSN }
