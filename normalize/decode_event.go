package normalize

import "github.com/trailwatch/trailwatch/normalize/schema"

// The schema half of DecodeEvent: one function per struct of schema.Event,
// each naming the JSON members of its struct as AppendEvent writes them.
// A member seen twice decodes twice into the same field, as with
// encoding/json: the last scalar wins, objects and maps merge.

func (d *decoder) event(ev *schema.Event) {
	d.fields(func(k []byte) {
		switch string(k) {
		case "@timestamp":
			ev.Timestamp = d.time()
		case "event":
			d.eventMeta(&ev.Event)
		case "source":
			d.endpoint(&ev.Source)
		case "client":
			d.endpoint(&ev.Client)
		case "destination":
			d.endpoint(&ev.Destination)
		case "user":
			d.user(&ev.User)
		case "user_agent":
			d.userAgent(&ev.UserAgent)
		case "http":
			d.http(&ev.HTTP)
		case "url":
			d.url(&ev.URL)
		case "cloud":
			d.cloud(&ev.Cloud)
		case "observer":
			d.observer(&ev.Observer)
		case "related":
			d.related(&ev.Related)
		case "tls":
			d.tls(&ev.TLS)
		case "service":
			d.service(&ev.Service)
		case "trace":
			d.fields(func(k []byte) {
				if string(k) == "id" {
					ev.Trace.ID = d.str()
					return
				}
				d.fail()
			})
		case "error":
			d.errorMeta(&ev.Error)
		case "threat":
			d.threat(&ev.Threat)
		case "labels":
			ev.Labels = d.strMap(ev.Labels)
		case "tags":
			ev.Tags = d.strs()
		case "trailwatch":
			d.trailwatch(&ev.Trailwatch)
		default:
			d.fail()
		}
	})
}

func (d *decoder) eventMeta(m *schema.EventMeta) {
	d.fields(func(k []byte) {
		switch string(k) {
		case "id":
			m.ID = d.str()
		case "kind":
			m.Kind = d.sym()
		case "category":
			m.Category = d.syms()
		case "type":
			m.Type = d.syms()
		case "action":
			m.Action = d.sym()
		case "outcome":
			m.Outcome = d.sym()
		case "dataset":
			m.Dataset = d.sym()
		case "module":
			m.Module = d.sym()
		case "provider":
			m.Provider = d.sym()
		case "severity":
			m.Severity = int(d.integer(64))
		case "duration":
			m.Duration = d.integer(64)
		case "created":
			m.Created = d.time()
		case "ingested":
			m.Ingested = d.time()
		default:
			d.fail()
		}
	})
}

func (d *decoder) endpoint(e *schema.Endpoint) {
	d.fields(func(k []byte) {
		switch string(k) {
		case "ip":
			e.IP = d.str()
		case "port":
			e.Port = int(d.integer(64))
		case "address":
			e.Address = d.str()
		case "domain":
			e.Domain = d.str()
		case "bytes":
			e.Bytes = d.integer(64)
		case "geo":
			d.geo(&e.Geo)
		case "as":
			d.as(&e.AS)
		default:
			d.fail()
		}
	})
}

func (d *decoder) geo(g *schema.Geo) {
	d.fields(func(k []byte) {
		switch string(k) {
		case "country_iso_code":
			g.CountryISOCode = d.sym()
		case "country_name":
			g.CountryName = d.sym()
		case "city_name":
			g.CityName = d.sym()
		case "location":
			d.fields(func(k []byte) {
				switch string(k) {
				case "lat":
					g.Location.Lat = d.float()
				case "lon":
					g.Location.Lon = d.float()
				default:
					d.fail()
				}
			})
		default:
			d.fail()
		}
	})
}

func (d *decoder) as(a *schema.AS) {
	d.fields(func(k []byte) {
		switch string(k) {
		case "number":
			a.Number = d.integer(64)
		case "organization":
			d.fields(func(k []byte) {
				if string(k) == "name" {
					a.Organization.Name = d.sym()
					return
				}
				d.fail()
			})
		default:
			d.fail()
		}
	})
}

func (d *decoder) user(u *schema.User) {
	d.fields(func(k []byte) {
		switch string(k) {
		case "id":
			u.ID = d.str()
		case "name":
			u.Name = d.str()
		case "email":
			u.Email = d.str()
		case "domain":
			u.Domain = d.sym()
		default:
			d.fail()
		}
	})
}

func (d *decoder) userAgent(ua *schema.UserAgent) {
	d.fields(func(k []byte) {
		switch string(k) {
		case "original":
			ua.Original = d.sym()
		case "name":
			ua.Name = d.sym()
		case "version":
			ua.Version = d.sym()
		case "os":
			d.fields(func(k []byte) {
				switch string(k) {
				case "name":
					ua.OS.Name = d.sym()
				case "version":
					ua.OS.Version = d.sym()
				case "full":
					ua.OS.Full = d.sym()
				default:
					d.fail()
				}
			})
		case "device":
			d.fields(func(k []byte) {
				if string(k) == "name" {
					ua.Device.Name = d.sym()
					return
				}
				d.fail()
			})
		default:
			d.fail()
		}
	})
}

func (d *decoder) body(b *schema.HTTPBody) {
	d.fields(func(k []byte) {
		if string(k) == "bytes" {
			b.Bytes = d.integer(64)
			return
		}
		d.fail()
	})
}

func (d *decoder) http(h *schema.HTTP) {
	d.fields(func(k []byte) {
		switch string(k) {
		case "version":
			h.Version = d.sym()
		case "request":
			r := &h.Request
			d.fields(func(k []byte) {
				switch string(k) {
				case "id":
					r.ID = d.str()
				case "method":
					r.Method = d.sym()
				case "referrer":
					r.Referrer = d.str()
				case "mime_type":
					r.MimeType = d.sym()
				case "bytes":
					r.Bytes = d.integer(64)
				case "body":
					d.body(&r.Body)
				default:
					d.fail()
				}
			})
		case "response":
			r := &h.Response
			d.fields(func(k []byte) {
				switch string(k) {
				case "status_code":
					r.StatusCode = int(d.integer(64))
				case "mime_type":
					r.MimeType = d.sym()
				case "bytes":
					r.Bytes = d.integer(64)
				case "body":
					d.body(&r.Body)
				default:
					d.fail()
				}
			})
		default:
			d.fail()
		}
	})
}

func (d *decoder) url(u *schema.URL) {
	d.fields(func(k []byte) {
		switch string(k) {
		case "original":
			u.Original = d.str()
		case "scheme":
			u.Scheme = d.sym()
		case "domain":
			u.Domain = d.sym()
		case "port":
			u.Port = int(d.integer(64))
		case "path":
			u.Path = d.str()
		case "query":
			u.Query = d.str()
		case "full":
			u.Full = d.str()
		default:
			d.fail()
		}
	})
}

func (d *decoder) cloud(c *schema.Cloud) {
	d.fields(func(k []byte) {
		switch string(k) {
		case "provider":
			c.Provider = d.sym()
		case "region":
			c.Region = d.sym()
		case "account":
			d.fields(func(k []byte) {
				if string(k) == "id" {
					c.Account.ID = d.sym()
					return
				}
				d.fail()
			})
		case "service":
			d.fields(func(k []byte) {
				if string(k) == "name" {
					c.Service.Name = d.sym()
					return
				}
				d.fail()
			})
		default:
			d.fail()
		}
	})
}

func (d *decoder) observer(o *schema.Observer) {
	d.fields(func(k []byte) {
		switch string(k) {
		case "name":
			o.Name = d.sym()
		case "hostname":
			o.Hostname = d.sym()
		case "type":
			o.Type = d.sym()
		case "vendor":
			o.Vendor = d.sym()
		case "product":
			o.Product = d.sym()
		default:
			d.fail()
		}
	})
}

func (d *decoder) related(r *schema.Related) {
	d.fields(func(k []byte) {
		switch string(k) {
		case "ip":
			r.IP = d.strs()
		case "user":
			r.User = d.strs()
		case "hosts":
			r.Hosts = d.strs()
		default:
			d.fail()
		}
	})
}

func (d *decoder) tls(t *schema.TLS) {
	d.fields(func(k []byte) {
		switch string(k) {
		case "version":
			t.Version = d.sym()
		case "version_protocol":
			t.VersionProtocol = d.sym()
		case "cipher":
			t.Cipher = d.sym()
		case "client":
			d.fields(func(k []byte) {
				if string(k) == "server_name" {
					t.Client.ServerName = d.sym()
					return
				}
				d.fail()
			})
		default:
			d.fail()
		}
	})
}

func (d *decoder) service(s *schema.Service) {
	d.fields(func(k []byte) {
		switch string(k) {
		case "id":
			s.ID = d.str()
		case "name":
			s.Name = d.sym()
		case "type":
			s.Type = d.sym()
		default:
			d.fail()
		}
	})
}

func (d *decoder) errorMeta(e *schema.Error) {
	d.fields(func(k []byte) {
		switch string(k) {
		case "code":
			e.Code = d.sym()
		case "message":
			e.Message = d.str()
		case "type":
			e.Type = d.sym()
		default:
			d.fail()
		}
	})
}

func (d *decoder) threat(t *schema.EventThreat) {
	d.fields(func(k []byte) {
		if string(k) != "enrichments" || t.Enrichments != nil {
			// A second array would decode into the first one's elements
			// in encoding/json; that merge is the fallback's to do.
			d.fail()
			return
		}
		t.Enrichments = []schema.ThreatEnrichment{}
		for more := d.enter('[', ']'); more; more = d.next(']') {
			t.Enrichments = append(t.Enrichments, schema.ThreatEnrichment{})
			d.threatEnrichment(&t.Enrichments[len(t.Enrichments)-1])
		}
	})
}

func (d *decoder) threatEnrichment(e *schema.ThreatEnrichment) {
	d.fields(func(k []byte) {
		switch string(k) {
		case "indicator":
			in := &e.Indicator
			d.fields(func(k []byte) {
				switch string(k) {
				case "type":
					in.Type = d.sym()
				case "ip":
					in.IP = d.str()
				case "url":
					in.URL = d.str()
				case "domain":
					in.Domain = d.str()
				case "provider":
					in.Provider = d.sym()
				case "description":
					in.Description = d.str()
				case "confidence":
					in.Confidence = d.sym()
				default:
					d.fail()
				}
			})
		case "matched":
			m := &e.Matched
			d.fields(func(k []byte) {
				switch string(k) {
				case "atomic":
					m.Atomic = d.str()
				case "field":
					m.Field = d.sym()
				case "type":
					m.Type = d.sym()
				default:
					d.fail()
				}
			})
		default:
			d.fail()
		}
	})
}

func (d *decoder) trailwatch(tw *schema.Trailwatch) {
	d.fields(func(k []byte) {
		switch string(k) {
		case "actor":
			tw.Actor = d.str()
		case "source":
			tw.Source = d.sym()
		case "credential":
			d.credential(&tw.Credential)
		case "identity":
			id := &tw.Identity
			d.fields(func(k []byte) {
				switch string(k) {
				case "owner":
					id.Owner = d.sym()
				case "team":
					id.Team = d.sym()
				case "service":
					id.Service = d.sym()
				case "known":
					id.Known = d.boolean()
				default:
					d.fail()
				}
			})
		case "raw":
			d.raw(&tw.Raw)
		case "session":
			s := &tw.Session
			d.fields(func(k []byte) {
				switch string(k) {
				case "id":
					s.ID = d.str()
				case "start":
					s.Start = d.time()
				case "requests":
					s.Requests = d.integer(64)
				case "bytes":
					s.Bytes = d.integer(64)
				default:
					d.fail()
				}
			})
		case "signals":
			d.signals(&tw.Signals)
		case "hop":
			d.hop(&tw.Hop)
		case "extra":
			tw.Extra = d.strMap(tw.Extra)
		default:
			d.fail()
		}
	})
}

func (d *decoder) credential(c *schema.Credential) {
	d.fields(func(k []byte) {
		switch string(k) {
		case "fingerprint":
			c.Fingerprint = d.str()
		case "type":
			c.Type = d.sym()
		case "id":
			c.ID = d.str()
		case "issuer":
			c.Issuer = d.sym()
		case "subject":
			c.Subject = d.str()
		case "client_id":
			c.ClientID = d.str()
		default:
			d.fail()
		}
	})
}

func (d *decoder) raw(r *schema.RawRef) {
	d.fields(func(k []byte) {
		switch string(k) {
		case "origin":
			r.Origin = d.sym()
		case "offset":
			r.Offset = d.integer(64)
		case "hash":
			r.Hash = d.str()
		case "collector":
			r.Collector = d.sym()
		case "partition":
			r.Partition = int32(d.integer(32))
		case "kafka_offset":
			r.KafkaOffset = d.integer(64)
		default:
			d.fail()
		}
	})
}

func (d *decoder) signals(s *schema.Signals) {
	d.fields(func(k []byte) {
		switch string(k) {
		case "first_seen":
			f := &s.FirstSeen
			d.fields(func(k []byte) {
				switch string(k) {
				case "ip":
					f.IP = d.boolean()
				case "asn":
					f.ASN = d.boolean()
				case "country":
					f.Country = d.boolean()
				case "user_agent":
					f.UserAgent = d.boolean()
				default:
					d.fail()
				}
			})
		case "distinct_ips":
			s.DistinctIPs = d.integer(64)
		case "distinct_actors":
			s.DistinctActors = d.integer(64)
		case "travel":
			t := &s.Travel
			d.fields(func(k []byte) {
				switch string(k) {
				case "from_ip":
					t.FromIP = d.str()
				case "from_country":
					t.FromCountry = d.sym()
				case "distance_km":
					t.DistanceKM = d.float()
				case "seconds":
					t.Seconds = d.integer(64)
				case "speed_kmh":
					t.SpeedKMH = d.float()
				case "impossible":
					t.Impossible = d.boolean()
				default:
					d.fail()
				}
			})
		default:
			d.fail()
		}
	})
}

func (d *decoder) hop(h *schema.Hop) {
	d.fields(func(k []byte) {
		switch string(k) {
		case "id":
			h.ID = d.str()
		case "index":
			h.Index = int(d.integer(64))
		case "duplicate":
			h.Duplicate = d.boolean()
		case "first_event_id":
			h.FirstEventID = d.str()
		case "client_ip":
			h.ClientIP = d.str()
		default:
			d.fail()
		}
	})
}
