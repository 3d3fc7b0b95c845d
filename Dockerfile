# Builds the single trailwatch binary into a small image.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/trailwatch ./cmd/trailwatch

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/trailwatch /usr/local/bin/trailwatch
COPY --from=build /src/rules /etc/trailwatch/rules
WORKDIR /var/lib/trailwatch
ENTRYPOINT ["/usr/local/bin/trailwatch"]
CMD ["run"]
