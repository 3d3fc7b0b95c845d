// Package mmdbtest writes real MaxMind DB files for tests with MaxMind's own
// writer (github.com/maxmind/mmdbwriter): City and ASN databases holding a
// few networks. It is imported by tests only.
package mmdbtest

import (
	"net"
	"os"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// City is one network of a City database; an empty Name leaves the city
// out, as for country-level records.
type City struct {
	CIDR, ISO, Country, Name string
	Lat, Lon                 float64
}

// ASN is one network of an ASN database.
type ASN struct {
	CIDR string
	Num  uint32
	Org  string
}

// WriteCity writes a GeoIP2-City database holding cities to path, stamped
// with mtime.
func WriteCity(t testing.TB, path string, mtime time.Time, cities ...City) {
	t.Helper()
	write(t, path, "GeoIP2-City", mtime, func(tree *mmdbwriter.Tree) {
		for _, c := range cities {
			rec := mmdbtype.Map{
				"country": mmdbtype.Map{
					"iso_code": mmdbtype.String(c.ISO),
					"names":    mmdbtype.Map{"en": mmdbtype.String(c.Country), "de": mmdbtype.String(c.Country + " (de)")},
				},
				"location": mmdbtype.Map{"latitude": mmdbtype.Float64(c.Lat), "longitude": mmdbtype.Float64(c.Lon)},
			}
			if c.Name != "" {
				rec["city"] = mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(c.Name)}}
			}
			insert(t, tree, c.CIDR, rec)
		}
	})
}

// WriteASN writes a GeoLite2-ASN database holding asns to path, stamped
// with mtime.
func WriteASN(t testing.TB, path string, mtime time.Time, asns ...ASN) {
	t.Helper()
	write(t, path, "GeoLite2-ASN", mtime, func(tree *mmdbwriter.Tree) {
		for _, a := range asns {
			insert(t, tree, a.CIDR, mmdbtype.Map{
				"autonomous_system_number":       mmdbtype.Uint32(a.Num),
				"autonomous_system_organization": mmdbtype.String(a.Org),
			})
		}
	})
}

// write builds a tree and writes it via a rename, so a reader never sees
// half a file.
func write(t testing.TB, path, dbType string, mtime time.Time, fill func(*mmdbwriter.Tree)) {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: dbType, RecordSize: 24})
	if err != nil {
		t.Fatal(err)
	}
	fill(tree)
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func insert(t testing.TB, tree *mmdbwriter.Tree, cidr string, v mmdbtype.DataType) {
	t.Helper()
	_, n, err := net.ParseCIDR(cidr)
	if err != nil {
		t.Fatal(err)
	}
	if err := tree.Insert(n, v); err != nil {
		t.Fatal(err)
	}
}
