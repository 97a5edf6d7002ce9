# syntax=docker/dockerfile:1
# One static binary with the subcommands serve, cdc, migrate, projections,
# slot and media; the web app is built first and embedded in it.
FROM node:20 AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
COPY internal/web/dist/ /src/internal/web/dist/
RUN npm run build

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
COPY --from=web /src/internal/web/dist/app ./internal/web/dist/app
RUN CGO_ENABLED=0 go build -trimpath -o /swapmeet ./cmd/swapmeet

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /swapmeet /swapmeet
EXPOSE 8080
ENTRYPOINT ["/swapmeet"]
