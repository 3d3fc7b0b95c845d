// Package schema defines the common event every stage speaks: a typed struct
// whose JSON names follow the Elastic Common Schema and whose expr tags follow
// the same dotted names, so a rule reads like a Kibana query and is
// type-checked when it loads.
//
// What ECS lacks (credential fingerprints, actor key, raw provenance) lives
// under the project namespace Trailwatch ("trailwatch.*"). The package holds
// data types only: it does no I/O and has no dependencies beyond the standard
// library, so every stage can import it.
package schema

import (
	"encoding/json"
	"time"
)

// Event is one normalized API access (one request, one audit record).
type Event struct {
	Timestamp   time.Time         `json:"@timestamp" expr:"timestamp"`
	Event       EventMeta         `json:"event,omitzero" expr:"event"`
	Source      Endpoint          `json:"source,omitzero" expr:"source"`
	Client      Endpoint          `json:"client,omitzero" expr:"client"`
	Destination Endpoint          `json:"destination,omitzero" expr:"destination"`
	User        User              `json:"user,omitzero" expr:"user"`
	UserAgent   UserAgent         `json:"user_agent,omitzero" expr:"user_agent"`
	HTTP        HTTP              `json:"http,omitzero" expr:"http"`
	URL         URL               `json:"url,omitzero" expr:"url"`
	Cloud       Cloud             `json:"cloud,omitzero" expr:"cloud"`
	Observer    Observer          `json:"observer,omitzero" expr:"observer"`
	Related     Related           `json:"related,omitzero" expr:"related"`
	TLS         TLS               `json:"tls,omitzero" expr:"tls"`
	Service     Service           `json:"service,omitzero" expr:"service"`
	Trace       Trace             `json:"trace,omitzero" expr:"trace"`
	Error       Error             `json:"error,omitzero" expr:"error"`
	Threat      EventThreat       `json:"threat,omitzero" expr:"threat"`
	Labels      map[string]string `json:"labels,omitempty" expr:"labels"`
	Tags        []string          `json:"tags,omitempty" expr:"tags"`
	Trailwatch  Trailwatch        `json:"trailwatch,omitzero" expr:"trailwatch"`
}

// EventMeta is ECS event.*: what kind of event this is and how it ended.
type EventMeta struct {
	ID       string    `json:"id,omitempty" expr:"id"`
	Kind     string    `json:"kind,omitempty" expr:"kind"`
	Category []string  `json:"category,omitempty" expr:"category"`
	Type     []string  `json:"type,omitempty" expr:"type"`
	Action   string    `json:"action,omitempty" expr:"action"`
	Outcome  string    `json:"outcome,omitempty" expr:"outcome"`
	Dataset  string    `json:"dataset,omitempty" expr:"dataset"`
	Module   string    `json:"module,omitempty" expr:"module"`
	Provider string    `json:"provider,omitempty" expr:"provider"`
	Severity int       `json:"severity,omitempty" expr:"severity"`
	Duration int64     `json:"duration,omitempty" expr:"duration"` // nanoseconds, as ECS
	Created  time.Time `json:"created,omitzero" expr:"created"`
	Ingested time.Time `json:"ingested,omitzero" expr:"ingested"`
}

// Endpoint is ECS source.*, client.* or destination.*.
type Endpoint struct {
	IP      string `json:"ip,omitempty" expr:"ip"`
	Port    int    `json:"port,omitempty" expr:"port"`
	Address string `json:"address,omitempty" expr:"address"`
	Domain  string `json:"domain,omitempty" expr:"domain"`
	Bytes   int64  `json:"bytes,omitempty" expr:"bytes"`
	Geo     Geo    `json:"geo,omitzero" expr:"geo"`
	AS      AS     `json:"as,omitzero" expr:"as"`
}

// Geo is ECS *.geo.*.
type Geo struct {
	CountryISOCode string   `json:"country_iso_code,omitempty" expr:"country_iso_code"`
	CountryName    string   `json:"country_name,omitempty" expr:"country_name"`
	CityName       string   `json:"city_name,omitempty" expr:"city_name"`
	Location       GeoPoint `json:"location,omitzero" expr:"location"`
}

// GeoPoint is a latitude/longitude pair, mapped as geo_point.
type GeoPoint struct {
	Lat float64 `json:"lat" expr:"lat"`
	Lon float64 `json:"lon" expr:"lon"`
}

// AS is ECS *.as.*: the autonomous system an address belongs to.
type AS struct {
	Number       int64          `json:"number,omitempty" expr:"number"`
	Organization ASOrganization `json:"organization,omitzero" expr:"organization"`
}

// ASOrganization is ECS *.as.organization.*.
type ASOrganization struct {
	Name string `json:"name,omitempty" expr:"name"`
}

// User is ECS user.*.
type User struct {
	ID     string `json:"id,omitempty" expr:"id"`
	Name   string `json:"name,omitempty" expr:"name"`
	Email  string `json:"email,omitempty" expr:"email"`
	Domain string `json:"domain,omitempty" expr:"domain"`
}

// UserAgent is ECS user_agent.*.
type UserAgent struct {
	Original string          `json:"original,omitempty" expr:"original"`
	Name     string          `json:"name,omitempty" expr:"name"`
	Version  string          `json:"version,omitempty" expr:"version"`
	OS       UserAgentOS     `json:"os,omitzero" expr:"os"`
	Device   UserAgentDevice `json:"device,omitzero" expr:"device"`
}

// UserAgentOS is ECS user_agent.os.*.
type UserAgentOS struct {
	Name    string `json:"name,omitempty" expr:"name"`
	Version string `json:"version,omitempty" expr:"version"`
	Full    string `json:"full,omitempty" expr:"full"`
}

// UserAgentDevice is ECS user_agent.device.*.
type UserAgentDevice struct {
	Name string `json:"name,omitempty" expr:"name"`
}

// TLS is ECS tls.*: the protocol and cipher the client negotiated.
type TLS struct {
	Version         string    `json:"version,omitempty" expr:"version"`
	VersionProtocol string    `json:"version_protocol,omitempty" expr:"version_protocol"`
	Cipher          string    `json:"cipher,omitempty" expr:"cipher"`
	Client          TLSClient `json:"client,omitzero" expr:"client"`
}

// TLSClient is ECS tls.client.*.
type TLSClient struct {
	ServerName string `json:"server_name,omitempty" expr:"server_name"`
}

// Service is ECS service.*: the API or backend service that was called.
type Service struct {
	ID   string `json:"id,omitempty" expr:"id"`
	Name string `json:"name,omitempty" expr:"name"`
	Type string `json:"type,omitempty" expr:"type"`
}

// Trace is ECS trace.*: the distributed trace a request belongs to.
type Trace struct {
	ID string `json:"id,omitempty" expr:"id"`
}

// Error is ECS error.*: why a request or API call failed.
type Error struct {
	Code    string `json:"code,omitempty" expr:"code"`
	Message string `json:"message,omitempty" expr:"message"`
	Type    string `json:"type,omitempty" expr:"type"`
}

// HTTP is ECS http.*.
type HTTP struct {
	Version  string       `json:"version,omitempty" expr:"version"`
	Request  HTTPRequest  `json:"request,omitzero" expr:"request"`
	Response HTTPResponse `json:"response,omitzero" expr:"response"`
}

// HTTPRequest is ECS http.request.*.
type HTTPRequest struct {
	ID       string   `json:"id,omitempty" expr:"id"`
	Method   string   `json:"method,omitempty" expr:"method"`
	Referrer string   `json:"referrer,omitempty" expr:"referrer"`
	MimeType string   `json:"mime_type,omitempty" expr:"mime_type"`
	Bytes    int64    `json:"bytes,omitempty" expr:"bytes"`
	Body     HTTPBody `json:"body,omitzero" expr:"body"`
}

// HTTPResponse is ECS http.response.*.
type HTTPResponse struct {
	StatusCode int      `json:"status_code,omitempty" expr:"status_code"`
	MimeType   string   `json:"mime_type,omitempty" expr:"mime_type"`
	Bytes      int64    `json:"bytes,omitempty" expr:"bytes"`
	Body       HTTPBody `json:"body,omitzero" expr:"body"`
}

// HTTPBody is ECS http.*.body.*.
type HTTPBody struct {
	Bytes int64 `json:"bytes,omitempty" expr:"bytes"`
}

// URL is ECS url.*.
type URL struct {
	Original string `json:"original,omitempty" expr:"original"`
	Scheme   string `json:"scheme,omitempty" expr:"scheme"`
	Domain   string `json:"domain,omitempty" expr:"domain"`
	Port     int    `json:"port,omitempty" expr:"port"`
	Path     string `json:"path,omitempty" expr:"path"`
	Query    string `json:"query,omitempty" expr:"query"`
	Full     string `json:"full,omitempty" expr:"full"`
}

// Cloud is ECS cloud.*.
type Cloud struct {
	Provider string       `json:"provider,omitempty" expr:"provider"`
	Region   string       `json:"region,omitempty" expr:"region"`
	Account  CloudAccount `json:"account,omitzero" expr:"account"`
	Service  CloudService `json:"service,omitzero" expr:"service"`
}

// CloudAccount is ECS cloud.account.*.
type CloudAccount struct {
	ID string `json:"id,omitempty" expr:"id"`
}

// CloudService is ECS cloud.service.*.
type CloudService struct {
	Name string `json:"name,omitempty" expr:"name"`
}

// Observer is ECS observer.*: the gateway or balancer that saw the request.
type Observer struct {
	Name     string `json:"name,omitempty" expr:"name"`
	Hostname string `json:"hostname,omitempty" expr:"hostname"`
	Type     string `json:"type,omitempty" expr:"type"`
	Vendor   string `json:"vendor,omitempty" expr:"vendor"`
	Product  string `json:"product,omitempty" expr:"product"`
}

// Related is ECS related.*: every IP, user and host the event mentions.
type Related struct {
	IP    []string `json:"ip,omitempty" expr:"ip"`
	User  []string `json:"user,omitempty" expr:"user"`
	Hosts []string `json:"hosts,omitempty" expr:"hosts"`
}

// Trailwatch is the project namespace: what ECS has no field for.
type Trailwatch struct {
	Actor      string            `json:"actor,omitempty" expr:"actor"`
	Source     string            `json:"source,omitempty" expr:"source"`
	Credential Credential        `json:"credential,omitzero" expr:"credential"`
	Identity   Identity          `json:"identity,omitzero" expr:"identity"`
	Raw        RawRef            `json:"raw,omitzero" expr:"raw"`
	Session    Session           `json:"session,omitzero" expr:"session"`
	Signals    Signals           `json:"signals,omitzero" expr:"signals"`
	Hop        Hop               `json:"hop,omitzero" expr:"hop"`
	Extra      map[string]string `json:"extra,omitempty" expr:"extra"`
}

// EventThreat is ECS threat.* on an event: the indicators it matched.
type EventThreat struct {
	Enrichments []ThreatEnrichment `json:"enrichments,omitempty" expr:"enrichments"`
}

// ThreatEnrichment is one ECS threat.enrichments entry: an indicator from a
// feed and the event field that matched it.
type ThreatEnrichment struct {
	Indicator ThreatIndicator `json:"indicator,omitzero" expr:"indicator"`
	Matched   ThreatMatched   `json:"matched,omitzero" expr:"matched"`
}

// ThreatIndicator is ECS threat.enrichments.indicator.*.
type ThreatIndicator struct {
	// Type is the ECS indicator type: ipv4-addr, ipv6-addr, url, domain-name.
	Type        string `json:"type,omitempty" expr:"type"`
	IP          string `json:"ip,omitempty" expr:"ip"`
	URL         string `json:"url,omitempty" expr:"url"`
	Domain      string `json:"domain,omitempty" expr:"domain"`
	Provider    string `json:"provider,omitempty" expr:"provider"`
	Description string `json:"description,omitempty" expr:"description"`
	// Confidence is the ECS scale: Low, Medium, High, None or Not Specified.
	Confidence string `json:"confidence,omitempty" expr:"confidence"`
}

// ThreatMatched is ECS threat.enrichments.matched.*.
type ThreatMatched struct {
	Atomic string `json:"atomic,omitempty" expr:"atomic"`
	Field  string `json:"field,omitempty" expr:"field"`
	// Type is indicator_match_rule in ECS terms; trailwatch writes the list name's kind.
	Type string `json:"type,omitempty" expr:"type"`
}

// Session is the actor's session an event belongs to: a run of requests by
// one credential (else user, else IP) with no gap longer than the
// inactivity timeout. Requests and Bytes count the session so far,
// this event included.
type Session struct {
	ID       string    `json:"id,omitempty" expr:"id"`
	Start    time.Time `json:"start,omitzero" expr:"start"`
	Requests int64     `json:"requests,omitempty" expr:"requests"`
	Bytes    int64     `json:"bytes,omitempty" expr:"bytes"`
}

// Signals are what correlation over the actor's history says about an
// event: first sightings, distinct counts over a rolling period, travel.
type Signals struct {
	FirstSeen FirstSeen `json:"first_seen,omitzero" expr:"first_seen"`
	// DistinctIPs is how many client IPs the event's credential (else
	// user) used over the correlation period, this one included.
	DistinctIPs int64 `json:"distinct_ips,omitempty" expr:"distinct_ips"`
	// DistinctActors is how many credentials or users the event's client
	// IP used over the correlation period, this one included.
	DistinctActors int64  `json:"distinct_actors,omitempty" expr:"distinct_actors"`
	Travel         Travel `json:"travel,omitzero" expr:"travel"`
}

// FirstSeen flags what the actor had not used before within the history
// period: each is true on the first event showing it.
type FirstSeen struct {
	IP        bool `json:"ip,omitempty" expr:"ip"`
	ASN       bool `json:"asn,omitempty" expr:"asn"`
	Country   bool `json:"country,omitempty" expr:"country"`
	UserAgent bool `json:"user_agent,omitempty" expr:"user_agent"`
}

// Travel compares an event's location with the actor's previous located
// event: the distance, the speed it implies, and whether that speed is
// impossible for a traveller.
type Travel struct {
	FromIP      string  `json:"from_ip,omitempty" expr:"from_ip"`
	FromCountry string  `json:"from_country,omitempty" expr:"from_country"`
	DistanceKM  float64 `json:"distance_km,omitempty" expr:"distance_km"`
	Seconds     int64   `json:"seconds,omitempty" expr:"seconds"`
	SpeedKMH    float64 `json:"speed_kmh,omitempty" expr:"speed_kmh"`
	Impossible  bool    `json:"impossible,omitempty" expr:"impossible"`
}

// Hop links the records several hops (CDN, load balancer, gateway,
// service) wrote for one request, by request or trace id.
type Hop struct {
	// ID is the request or trace id that linked the hops.
	ID string `json:"id,omitempty" expr:"id"`
	// Index counts the hops seen for the request before this one.
	Index int `json:"index,omitempty" expr:"index"`
	// Duplicate is true on every hop after the first seen: the request is
	// already in the trail, so counting rules skip it.
	Duplicate bool `json:"duplicate,omitempty" expr:"duplicate"`
	// FirstEventID is the event id of the first hop seen.
	FirstEventID string `json:"first_event_id,omitempty" expr:"first_event_id"`
	// ClientIP is the true client: the first address of the forwarded-for
	// chain, or the first hop's client.
	ClientIP string `json:"client_ip,omitempty" expr:"client_ip"`
}

// Credential identifies the secret used without holding it: a keyed
// fingerprint of the secret, its kind, and what the credential itself says
// about its holder (public identifiers only, never the secret).
type Credential struct {
	// Fingerprint is the collector's HMAC of the secret.
	Fingerprint string `json:"fingerprint,omitempty" expr:"fingerprint"`
	// Type is the kind: apikey, bearer, jwt, basic, password, session, signature.
	Type string `json:"type,omitempty" expr:"type"`
	// ID is a public identifier of the credential (an AWS access key id).
	ID string `json:"id,omitempty" expr:"id"`
	// Issuer, Subject and ClientID are JWT claims (iss, sub, client_id/azp),
	// decoded, not verified.
	Issuer   string `json:"issuer,omitempty" expr:"issuer"`
	Subject  string `json:"subject,omitempty" expr:"subject"`
	ClientID string `json:"client_id,omitempty" expr:"client_id"`
}

// Identity is who owns the credential (or user) an event used, from the
// identity inventory; Known is false with the other fields empty when the
// event had a credential the inventory does not list.
type Identity struct {
	Owner   string `json:"owner,omitempty" expr:"owner"`
	Team    string `json:"team,omitempty" expr:"team"`
	Service string `json:"service,omitempty" expr:"service"`
	Known   bool   `json:"known,omitempty" expr:"known"`
}

// RawRef points back at the raw record the event came from.
type RawRef struct {
	Origin    string `json:"origin,omitempty" expr:"origin"`
	Offset    int64  `json:"offset" expr:"offset"`
	Hash      string `json:"hash,omitempty" expr:"hash"`
	Collector string `json:"collector,omitempty" expr:"collector"`
	// Partition and KafkaOffset locate the record in the raw topic; Hash
	// is its integrity digest (internal/integrity), so an indexed document
	// can be traced to the record and checked against the signed chain.
	Partition   int32 `json:"partition,omitempty" expr:"partition"`
	KafkaOffset int64 `json:"kafka_offset,omitempty" expr:"kafka_offset"`
}

// MarshalJSON writes r as its tags say, except that a record read from the
// raw topic (Hash set) always states its partition and Kafka offset, 0
// included: a document from partition 0 must say so, not leave it out.
func (r RawRef) MarshalJSON() ([]byte, error) {
	type plain RawRef
	if r.Hash == "" {
		return json.Marshal(plain(r))
	}
	return json.Marshal(struct {
		plain
		Partition   int32 `json:"partition"`
		KafkaOffset int64 `json:"kafka_offset"`
	}{plain(r), r.Partition, r.KafkaOffset})
}

// ActorKey returns the key that groups an actor's events: the credential
// fingerprint, else the user name, else the client address.
func (e *Event) ActorKey() string {
	switch {
	case e.Trailwatch.Credential.Fingerprint != "":
		return "cred:" + e.Trailwatch.Credential.Fingerprint
	case e.User.Name != "":
		return "user:" + e.User.Name
	case e.Source.IP != "":
		return "ip:" + e.Source.IP
	}
	return ""
}
