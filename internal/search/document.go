package search

import "github.com/swapmeet/swapmeet/internal/readstore"

// A search row carries the fields of the listing document (without the
// Mongo-only keyword arrays): the CDC makes rows from the documents it
// builds, and the queries make their views from rows as from documents.

// FromDocument is the search row of a built listing document.
func FromDocument(d readstore.Listing) Listing {
	var media []Media
	for _, m := range d.Media {
		media = append(media, Media{ID: m.ID, ContentType: m.ContentType, SizeBytes: m.SizeBytes,
			Width: m.Width, Height: m.Height, ObjectKey: m.ObjectKey, ThumbnailKey: m.ThumbnailKey})
	}
	return Listing{
		ID: d.ID,
		Seller: Seller{ID: d.Seller.ID, DisplayName: d.Seller.DisplayName,
			RatingAverage: d.Seller.RatingAverage, RatingCount: d.Seller.RatingCount},
		Title: d.Title, Description: d.Description, Category: d.Category, Condition: d.Condition,
		Price:      Money{Currency: d.Price.Currency, Minor: d.Price.Minor},
		Attributes: d.Attributes, Status: d.Status, Version: d.Version, Media: media,
		CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt, LSN: d.LSN,
	}
}

// Document is the row in the shape of the listing document.
func (l Listing) Document() readstore.Listing {
	media := make([]readstore.Media, len(l.Media))
	for i, m := range l.Media {
		media[i] = readstore.Media{ID: m.ID, ContentType: m.ContentType, SizeBytes: m.SizeBytes,
			Width: m.Width, Height: m.Height, ObjectKey: m.ObjectKey, ThumbnailKey: m.ThumbnailKey}
	}
	return readstore.Listing{
		ID: l.ID,
		Seller: readstore.UserSummary{ID: l.Seller.ID, DisplayName: l.Seller.DisplayName,
			RatingAverage: l.Seller.RatingAverage, RatingCount: l.Seller.RatingCount},
		Title: l.Title, Description: l.Description, Category: l.Category, Condition: l.Condition,
		Price:      readstore.Money{Currency: l.Price.Currency, Minor: l.Price.Minor},
		Attributes: l.Attributes, Status: l.Status, Version: l.Version, Media: media,
		CreatedAt: l.CreatedAt, UpdatedAt: l.UpdatedAt, LSN: l.LSN,
	}
}
