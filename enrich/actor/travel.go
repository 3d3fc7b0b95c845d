package actor

import (
	"math"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// travel compares a located event with the actor's previous located event
// at another location. With mutate, an event in order extends the last
// stay or opens a new one; a late event only reads the stays.
func (e *Enricher) travel(a *actor, ev *schema.Event, t int64, id uint64, mutate bool) (schema.Travel, bool) {
	loc := ev.Source.Geo.Location
	if loc == (schema.GeoPoint{}) {
		return schema.Travel{}, false
	}
	ss := a.stays
	// The event that opened a stay, seen again, gets the travel it got.
	for i := range ss {
		if ss[i].t1 == t && ss[i].id1 == id {
			return ss[i].open, ss[i].open != (schema.Travel{})
		}
	}
	n := len(ss)
	if mutate && (n == 0 || t >= ss[n-1].t2) {
		if n > 0 && ss[n-1].lat == loc.Lat && ss[n-1].lon == loc.Lon {
			last := &ss[n-1]
			last.t2, last.ip, last.country = t, ev.Source.IP, ev.Source.Geo.CountryISOCode
			return schema.Travel{}, false
		}
		var tr schema.Travel
		if n > 0 {
			tr = e.compare(&ss[n-1], ss[n-1].t2, loc, t)
		}
		if n == maxStays {
			copy(ss, ss[1:])
			ss = ss[:n-1]
		}
		a.stays = append(ss, stay{lat: loc.Lat, lon: loc.Lon, t1: t, id1: id, t2: t, ip: ev.Source.IP, country: ev.Source.Geo.CountryISOCode, open: tr})
		return tr, n > 0
	}
	// Late: the stay in effect at t is the last one that started by then.
	p := -1
	for i := range ss {
		if ss[i].t1 <= t {
			p = i
		}
	}
	if p < 0 || (ss[p].lat == loc.Lat && ss[p].lon == loc.Lon) {
		return schema.Travel{}, false
	}
	from := ss[p].t2
	if from > t {
		// The stay went on past t: its first event is the latest known
		// to precede t, so the speed is a lower bound.
		from = ss[p].t1
	}
	return e.compare(&ss[p], from, loc, t), true
}

// compare is the travel from s (left at fromT) to loc at t.
func (e *Enricher) compare(s *stay, fromT int64, loc schema.GeoPoint, t int64) schema.Travel {
	d := distanceKM(s.lat, s.lon, loc.Lat, loc.Lon)
	secs := float64(t-fromT) / 1e9
	// Under a second apart counts as one second: the speed stays finite
	// (JSON has no infinity) and is still far beyond any threshold.
	speed := d * 3600 / max(secs, 1)
	return schema.Travel{
		FromIP:      s.ip,
		FromCountry: s.country,
		DistanceKM:  math.Round(d*10) / 10,
		Seconds:     (t - fromT) / 1e9,
		SpeedKMH:    math.Round(speed*10) / 10,
		Impossible:  speed > e.cfg.MaxSpeedKMH && d > e.cfg.MinDistanceKM,
	}
}

// earthRadiusKM is the mean radius of the Earth (IUGG).
const earthRadiusKM = 6371.0088

// distanceKM is the great-circle distance by the haversine formula.
func distanceKM(lat1, lon1, lat2, lon2 float64) float64 {
	rad := math.Pi / 180
	dLat := (lat2 - lat1) * rad
	dLon := (lon2 - lon1) * rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadiusKM * math.Asin(math.Min(1, math.Sqrt(h)))
}
