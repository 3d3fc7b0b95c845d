package normalize

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	gzip "github.com/klauspost/compress/gzip"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// MaxCloudTrailFileBytes bounds a CloudTrail log file after decompression.
// CloudTrail delivers files of a few MiB at most; a gzip bomb stops here.
const MaxCloudTrailFileBytes = 256 << 20

// CloudTrail parses AWS CloudTrail records in the three shapes they travel
// in:
//   - the S3-delivered log file, {"Records":[…]}, one ingest.Record holding
//     a whole file, gzip-compressed (detected by its 1f 8b magic) or not,
//     at most MaxCloudTrailFileBytes decompressed; each record becomes one
//     event;
//   - a single event JSON object (CloudWatch Logs, a Kafka topic);
//   - an EventBridge envelope whose "detail" holds the event.
//
// event.id is the CloudTrail eventID when the record has one: CloudTrail
// may deliver an event twice, and the same event read from S3 and from
// EventBridge then indexes once. Without an eventID it is rec.ID() for a
// single event and rec.ID()+"-"+N for the N-th (0-based) record of a file.
// Both are deterministic.
//
// A file is all or nothing: one malformed record fails the whole file,
// with an error naming its index (Records[N]), so the dead-letter topic
// holds it complete and nothing is half-indexed.
//
// The mapping follows Elastic's aws integration (cloudtrail data stream);
// fields without an ECS home go to trailwatch.extra under Elastic's
// aws.cloudtrail.* names. userIdentity.accessKeyId, a public identifier
// (the secret key is never logged), is trailwatch.credential.id with type
// "awskey". Request and response bodies are not kept in the event: the raw
// topic has them. CloudTrail is stateless and safe for concurrent use.
type CloudTrail struct{}

// NewCloudTrail returns the CloudTrail normalizer.
func NewCloudTrail() *CloudTrail { return &CloudTrail{} }

// NewCloudTrailSpec builds the cloudtrail normalizer from a spec; it takes
// no options.
func NewCloudTrailSpec(s Spec) (Normalizer, error) {
	if s.Format != "" || s.Pattern != "" || len(s.Fields) > 0 || s.TimeLayout != "" {
		return nil, errNoOptions
	}
	return NewCloudTrail(), nil
}

// ctRecord is the part of a CloudTrail record the event uses.
type ctRecord struct {
	EventVersion, EventTime, EventSource, EventName, AWSRegion         string
	SourceIPAddress, UserAgent, ErrorCode, ErrorMessage, RequestID     string
	EventID, EventType, EventCategory, ReadOnly, ManagementEvent       string
	RecipientAccountID, SharedEventID, VPCEndpointID                   string
	UserType, PrincipalID, ARN, AccountID, AccessKeyID, UserName       string
	InvokedBy, IssuerType, IssuerARN, IssuerUserName, MFAAuthenticated string
	TLSVersion, CipherSuite, HostHeader, ConsoleLogin, MFAUsed         string
}

// ctObjects are the paths that must hold objects when present; the
// walker descends only into these (and their EventBridge "detail."
// twins), so request and response bodies are checked and skipped.
var ctObjects = map[string]bool{
	"userIdentity": true, "userIdentity.sessionContext": true,
	"userIdentity.sessionContext.sessionIssuer": true,
	"userIdentity.sessionContext.attributes":    true,
	"tlsDetails":                                true, "responseElements": true, "additionalEventData": true,
}

// ctDecoder fills a record (and an EventBridge envelope's detail) from
// walker callbacks.
type ctDecoder struct {
	rec, detail ctRecord
	inDetail    bool // a "detail" object was seen
	err         error
}

func (d *ctDecoder) enter(path []byte, object bool) bool {
	if !object {
		return false // no array holds anything the event uses
	}
	p := string(path)
	if p == "" {
		return true
	}
	if p == "detail" {
		d.inDetail = true
		return true
	}
	p = strings.TrimPrefix(p, "detail.")
	return ctObjects[p]
}

func (d *ctDecoder) leaf(path []byte, v cjVal) error {
	r := &d.rec
	p := path
	if bytes.HasPrefix(p, []byte("detail.")) {
		r, p = &d.detail, p[len("detail."):]
	}
	if v.kind == 'n' {
		return nil
	}
	var dst *string
	switch string(p) {
	case "eventVersion":
		dst = &r.EventVersion
	case "eventTime":
		dst = &r.EventTime
	case "eventSource":
		dst = &r.EventSource
	case "eventName":
		dst = &r.EventName
	case "awsRegion":
		dst = &r.AWSRegion
	case "sourceIPAddress":
		dst = &r.SourceIPAddress
	case "userAgent":
		dst = &r.UserAgent
	case "errorCode":
		dst = &r.ErrorCode
	case "errorMessage":
		dst = &r.ErrorMessage
	case "requestID":
		dst = &r.RequestID
	case "eventID":
		dst = &r.EventID
	case "eventType":
		dst = &r.EventType
	case "eventCategory":
		dst = &r.EventCategory
	case "readOnly":
		dst = &r.ReadOnly
	case "managementEvent":
		dst = &r.ManagementEvent
	case "recipientAccountId":
		dst = &r.RecipientAccountID
	case "sharedEventID":
		dst = &r.SharedEventID
	case "vpcEndpointId":
		dst = &r.VPCEndpointID
	case "userIdentity.type":
		dst = &r.UserType
	case "userIdentity.principalId":
		dst = &r.PrincipalID
	case "userIdentity.arn":
		dst = &r.ARN
	case "userIdentity.accountId":
		dst = &r.AccountID
	case "userIdentity.accessKeyId":
		dst = &r.AccessKeyID
	case "userIdentity.userName":
		dst = &r.UserName
	case "userIdentity.invokedBy":
		dst = &r.InvokedBy
	case "userIdentity.sessionContext.sessionIssuer.type":
		dst = &r.IssuerType
	case "userIdentity.sessionContext.sessionIssuer.arn":
		dst = &r.IssuerARN
	case "userIdentity.sessionContext.sessionIssuer.userName":
		dst = &r.IssuerUserName
	case "userIdentity.sessionContext.attributes.mfaAuthenticated":
		dst = &r.MFAAuthenticated
	case "tlsDetails.tlsVersion":
		dst = &r.TLSVersion
	case "tlsDetails.cipherSuite":
		dst = &r.CipherSuite
	case "tlsDetails.clientProvidedHostHeader":
		dst = &r.HostHeader
	case "responseElements.ConsoleLogin":
		dst = &r.ConsoleLogin
	case "additionalEventData.MFAUsed":
		dst = &r.MFAUsed
	default:
		if ctObjects[string(p)] {
			return fmt.Errorf("%s: want an object, got %s", path, cjKind(v.kind))
		}
		return nil
	}
	*dst = v.str()
	return nil
}

// cjKind names a scalar kind for errors.
func cjKind(k byte) string {
	switch k {
	case '"':
		return "a string"
	case '0':
		return "a number"
	}
	return "a boolean"
}

// record returns the event record: the envelope's detail when the top
// level is not itself an event.
func (d *ctDecoder) record() *ctRecord {
	if d.inDetail && d.rec.EventName == "" {
		return &d.detail
	}
	return &d.rec
}

// Normalize appends the events of rec to dst: one for a single event, one
// per record for a log file. On error dst is returned unchanged.
func (n *CloudTrail) Normalize(dst []schema.Event, rec *ingest.Record) ([]schema.Event, error) {
	data := rec.Data
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		var err error
		if data, err = ctGunzip(data, MaxCloudTrailFileBytes); err != nil {
			return dst, err
		}
	}
	if len(data) > MaxCloudTrailFileBytes {
		return dst, fmt.Errorf("cloudtrail: record is %d bytes, over the %d MiB limit", len(data), MaxCloudTrailFileBytes>>20)
	}
	if ctIsFile(data) {
		return ctFile(dst, rec, data)
	}
	if len(data) > MaxJSONRecordBytes {
		return dst, fmt.Errorf("cloudtrail: event is %d bytes, over the %d-byte limit", len(data), MaxJSONRecordBytes)
	}
	var d ctDecoder
	var path [96]byte
	w := cjWalker{data: data, path: path[:0], enter: d.enter, leaf: d.leaf}
	if err := w.walkAll(); err != nil {
		return dst, fmt.Errorf("cloudtrail: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 || bytes.TrimSpace(data)[0] != '{' {
		return dst, errors.New("cloudtrail: record is not a JSON object")
	}
	r := d.record()
	k := len(dst)
	dst = append(dst, schema.Event{})
	if err := ctMap(&dst[k], r); err != nil {
		dst[k] = schema.Event{}
		return dst[:k], fmt.Errorf("cloudtrail: %w", err)
	}
	ctFinish(&dst[k], rec, r, rec.ID())
	return dst, nil
}

// ctIsFile reports whether data starts like a log file: {"Records":
func ctIsFile(data []byte) bool {
	data = bytes.TrimLeft(data, " \t\r\n")
	if len(data) == 0 || data[0] != '{' {
		return false
	}
	data = bytes.TrimLeft(data[1:], " \t\r\n")
	return bytes.HasPrefix(data, []byte(`"Records"`))
}

// ctGzipReaders recycles gzip readers: each holds ~40 KiB of window and
// tables, more than a small CloudTrail file.
var ctGzipReaders sync.Pool

// ctGunzip decompresses a gzip'd file, refusing output past limit bytes.
func ctGunzip(data []byte, limit int) ([]byte, error) {
	zr, _ := ctGzipReaders.Get().(*gzip.Reader)
	var err error
	if zr == nil {
		zr, err = gzip.NewReader(bytes.NewReader(data))
	} else {
		err = zr.Reset(bytes.NewReader(data))
	}
	if err != nil {
		return nil, fmt.Errorf("cloudtrail: gzip: %w", err)
	}
	defer ctGzipReaders.Put(zr)
	// The trailer's ISIZE (size mod 2^32) sizes the buffer; it is only a
	// hint, so a lie costs a regrowth, never a wrong result.
	size := 64 << 10
	if n := len(data); n >= 4 {
		if isize := int(binary.LittleEndian.Uint32(data[n-4:])); isize > 0 && isize <= limit {
			size = isize + 1
		}
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	if _, err := buf.ReadFrom(io.LimitReader(zr, int64(limit)+1)); err != nil {
		return nil, fmt.Errorf("cloudtrail: gzip: %w", err)
	}
	if buf.Len() > limit {
		return nil, fmt.Errorf("cloudtrail: decompressed file exceeds the %d-byte (%d MiB) limit", limit, limit>>20)
	}
	return buf.Bytes(), nil
}

// ctFile walks the Records array of a log file, one event per record:
// {"Records":[{…},{…}]} and nothing after it.
func ctFile(dst []schema.Event, rec *ingest.Record, data []byte) ([]schema.Event, error) {
	k0 := len(dst)
	fail := func(err error) ([]schema.Event, error) {
		clear(dst[k0:])
		return dst[:k0], err
	}
	var path [96]byte
	w := cjWalker{data: data, path: path[:0]}
	w.ws()
	w.i++ // '{', checked by ctIsFile
	w.ws()
	if _, _, err := w.str(); err != nil { // "Records", checked by ctIsFile
		return fail(fmt.Errorf("cloudtrail: file: %w", err))
	}
	if err := w.expect(':'); err != nil {
		return fail(fmt.Errorf("cloudtrail: file: %w", err))
	}
	if err := w.expect('['); err != nil {
		return fail(fmt.Errorf("cloudtrail: file: Records: %w", err))
	}
	base := rec.ID()
	w.ws()
	if w.i < len(w.data) && w.data[w.i] == ']' {
		w.i++
	} else {
		for i := 0; ; i++ {
			w.ws()
			if w.i >= len(w.data) || w.data[w.i] != '{' {
				return fail(fmt.Errorf("cloudtrail: Records[%d]: want an object", i))
			}
			var d ctDecoder
			w.enter, w.leaf = d.enter, d.leaf
			w.path = w.path[:0]
			if err := w.value(1, true); err != nil {
				return fail(fmt.Errorf("cloudtrail: Records[%d]: %w", i, err))
			}
			dst = append(dst, schema.Event{})
			ev := &dst[len(dst)-1]
			if err := ctMap(ev, &d.rec); err != nil {
				return fail(fmt.Errorf("cloudtrail: Records[%d]: %w", i, err))
			}
			ctFinish(ev, rec, &d.rec, base+"-"+strconv.Itoa(i))
			w.ws()
			if w.i >= len(w.data) {
				return fail(errors.New("cloudtrail: file: truncated Records array"))
			}
			if w.data[w.i] == ']' {
				w.i++
				break
			}
			if w.data[w.i] != ',' {
				return fail(fmt.Errorf("cloudtrail: file: %w", w.errf("want ',' or ']'")))
			}
			w.i++
		}
	}
	if err := w.expect('}'); err != nil {
		return fail(fmt.Errorf("cloudtrail: file: %w", err))
	}
	w.ws()
	if w.i != len(w.data) {
		return fail(errors.New("cloudtrail: file: data after the Records object"))
	}
	return dst, nil
}

// ctExtraHint sizes trailwatch.extra for a CloudTrail event.
const ctExtraHint = 12

// ctMap maps one record.
func ctMap(ev *schema.Event, r *ctRecord) error {
	if r.EventTime == "" {
		return errors.New("eventTime: missing")
	}
	t, ok := cloudTime(r.EventTime)
	if !ok {
		return fmt.Errorf("eventTime: invalid time %q", cloudClip(r.EventTime))
	}
	if r.EventName == "" {
		return errors.New("eventName: missing")
	}
	ev.Timestamp = t
	ev.Event.Kind = "event"
	ev.Event.Action = r.EventName
	ev.Event.Provider = r.EventSource
	ev.Event.Dataset = "aws.cloudtrail"
	ev.Event.Module = "aws"
	ev.Event.Category, ev.Event.Type = ctCategorize(r.EventSource, r.EventName)
	ev.Event.Outcome = "success"
	if r.ErrorCode != "" {
		ev.Event.Outcome = "failure"
		ev.Error.Code = r.ErrorCode
	}
	ev.Error.Message = r.ErrorMessage
	if r.EventName == "ConsoleLogin" && r.ConsoleLogin == "Failure" {
		ev.Event.Outcome = "failure"
	}
	cloudSource(ev, r.SourceIPAddress)
	ev.UserAgent.Original = r.UserAgent
	ev.Cloud.Provider = "aws"
	ev.Cloud.Region = r.AWSRegion
	ev.Cloud.Account.ID = r.RecipientAccountID
	if ev.Cloud.Account.ID == "" {
		ev.Cloud.Account.ID = r.AccountID
	}
	ev.HTTP.Request.ID = r.RequestID

	ev.User.ID = r.ARN
	if ev.User.ID == "" {
		ev.User.ID = r.PrincipalID
	}
	switch {
	case r.UserName != "":
		ev.User.Name = r.UserName
	case r.IssuerUserName != "":
		ev.User.Name = r.IssuerUserName
	case r.UserType == "Root":
		ev.User.Name = "root"
	case r.InvokedBy != "":
		ev.User.Name = r.InvokedBy
	}
	cloudRelatedUser(ev, ev.User.Name)
	if r.AccessKeyID != "" {
		ev.Trailwatch.Credential.ID = r.AccessKeyID
		ev.Trailwatch.Credential.Type = "awskey"
	}
	cloudTLS(ev, r.TLSVersion, r.CipherSuite)
	ev.TLS.Client.ServerName = r.HostHeader

	add := func(k, v string) { cloudExtra(ev, ctExtraHint, k, v) }
	add("aws.cloudtrail.event_version", r.EventVersion)
	add("aws.cloudtrail.event_type", r.EventType)
	add("aws.cloudtrail.event_category", r.EventCategory)
	add("aws.cloudtrail.read_only", r.ReadOnly)
	add("aws.cloudtrail.management_event", r.ManagementEvent)
	add("aws.cloudtrail.shared_event_id", r.SharedEventID)
	add("aws.cloudtrail.vpc_endpoint_id", r.VPCEndpointID)
	add("aws.cloudtrail.user_identity.type", r.UserType)
	add("aws.cloudtrail.user_identity.invoked_by", r.InvokedBy)
	add("aws.cloudtrail.user_identity.session_context.session_issuer.arn", r.IssuerARN)
	add("aws.cloudtrail.user_identity.session_context.session_issuer.type", r.IssuerType)
	add("aws.cloudtrail.user_identity.session_context.mfa_authenticated", r.MFAAuthenticated)
	if r.EventName == "ConsoleLogin" {
		add("aws.cloudtrail.console_login.additional_eventdata.mfa_used", r.MFAUsed)
	}
	return nil
}

// ctFinish sets identity and provenance; id is used without an eventID.
func ctFinish(ev *schema.Event, rec *ingest.Record, r *ctRecord, id string) {
	ev.Event.ID = id
	if r.EventID != "" {
		ev.Event.ID = r.EventID
	}
	ev.Trailwatch.Source = "cloudtrail"
	ev.Trailwatch.Raw = schema.RawRef{Origin: rec.Origin, Offset: rec.Offset, Collector: rec.Collector}
	ev.Trailwatch.Actor = ev.ActorKey()
}

// ctCategorize derives ECS event.category and event.type from the API
// called, the way Elastic's pipeline does in spirit: sign-ins are
// authentication, IAM calls are iam, the verb gives the type.
func ctCategorize(source, name string) (category, typ []string) {
	arr := &[2]string{"api"}
	switch {
	case name == "ConsoleLogin" || name == "GetSessionToken" || name == "GetFederationToken" ||
		strings.HasPrefix(name, "AssumeRole") || source == "signin.amazonaws.com":
		arr[0] = "authentication"
		arr[1] = "start"
		return arr[0:1:1], arr[1:2:2]
	case source == "iam.amazonaws.com":
		arr[0] = "iam"
	}
	switch {
	case hasAnyPrefix(name, "Create", "Run", "Put", "Add", "Register", "Import", "Upload", "Start", "Issue", "Allocate"):
		arr[1] = "creation"
	case hasAnyPrefix(name, "Delete", "Remove", "Terminate", "Deregister", "Revoke", "Release", "Stop", "Disable", "Detach", "Deactivate"):
		arr[1] = "deletion"
	case hasAnyPrefix(name, "Update", "Modify", "Attach", "Set", "Enable", "Change", "Reset", "Replace", "Associate", "Tag", "Untag", "Activate"):
		arr[1] = "change"
	case hasAnyPrefix(name, "Get", "List", "Describe", "Lookup", "Head", "Search", "Select", "Scan", "Query"):
		arr[1] = "access"
	default:
		arr[1] = "info"
	}
	return arr[0:1:1], arr[1:2:2]
}

func hasAnyPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
