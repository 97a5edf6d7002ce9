-- name: CreateReview :exec
INSERT INTO reviews (id, order_id, seller_id, author_id, rating, comment)
VALUES (@id, @order_id, @seller_id, @author_id, @rating, @comment);
