# syntax=docker/dockerfile:1
# One static binary with the subcommands serve, cdc and migrate.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /swapmeet ./cmd/swapmeet

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /swapmeet /swapmeet
EXPOSE 8080
ENTRYPOINT ["/swapmeet"]
