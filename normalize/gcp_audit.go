package normalize

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// GCPAudit parses Google Cloud Audit Logs: one LogEntry JSON object per
// record (as a log sink writes them to Pub/Sub, Cloud Storage or a file)
// whose protoPayload is a google.cloud.audit.AuditLog.
//
// event.id is derived from the entry's logName, timestamp and insertId,
// the triple Cloud Logging deduplicates on, so an entry delivered twice
// (Pub/Sub is at-least-once) indexes once; without an insertId it is
// rec.ID().
//
// The mapping follows Elastic's gcp integration (audit data stream):
// principalEmail is user.email and user.name, callerIp source.ip,
// serviceName event.provider and service.name, methodName event.action,
// status.code non-zero makes the outcome failure with error.code and
// error.message, resource.labels.project_id is cloud.account.id. A service
// account key (authenticationInfo.serviceAccountKeyName, a public name) is
// trailwatch.credential.id with type "gcpkey". The request and response
// bodies are not kept in the event; the raw topic has them. GCPAudit is
// stateless and safe for concurrent use.
type GCPAudit struct{}

// NewGCPAudit returns the Cloud Audit Logs normalizer.
func NewGCPAudit() *GCPAudit { return &GCPAudit{} }

// NewGCPAuditSpec builds the gcp_audit normalizer from a spec; it takes no
// options.
func NewGCPAuditSpec(s Spec) (Normalizer, error) {
	if s.Format != "" || s.Pattern != "" || len(s.Fields) > 0 || s.TimeLayout != "" {
		return nil, errNoOptions
	}
	return NewGCPAudit(), nil
}

// gcpAuditLogType is the protoPayload @type of an audit log entry.
const gcpAuditLogType = "type.googleapis.com/google.cloud.audit.AuditLog"

// gcpEntry is the part of a LogEntry the event uses.
type gcpEntry struct {
	HasPayload, PayloadObject                               bool
	Type, StatusCode, StatusMessage                         string
	PrincipalEmail, PrincipalSubject, KeyName, Authority    string
	CallerIP, UserAgent, CallerNetwork                      string
	ServiceName, MethodName, ResourceName, Location         string
	InsertID, ResourceType, ProjectID, Region, Zone, LocLbl string
	Timestamp, Severity, LogName, Trace, OperationID        string
	Granted, Denied                                         []string
	authz                                                   int // authorizationInfo entries met
	authzPerm                                               string
	authzGranted                                            bool
}

// gcpDescend lists the objects the walker enters; request, response,
// metadata and serviceData bodies are checked and skipped.
var gcpDescend = map[string]bool{
	"": true, "protoPayload": true, "protoPayload.status": true,
	"protoPayload.authenticationInfo": true, "protoPayload.requestMetadata": true,
	"protoPayload.authorizationInfo": true, "protoPayload.resourceLocation": true,
	"protoPayload.resourceLocation.currentLocations": true,
	"resource": true, "resource.labels": true, "operation": true,
}

func (e *gcpEntry) enter(path []byte, object bool) bool {
	p := string(path)
	switch p {
	case "protoPayload":
		e.HasPayload, e.PayloadObject = true, object
	case "protoPayload.authorizationInfo":
		// Called for the array and again for each element object: an
		// element boundary, where the previous element is complete.
		// (Proto3 JSON omits "granted": false, so permissions and
		// grants cannot be paired by position.)
		e.flushAuthz()
		e.authz++
	}
	return gcpDescend[p]
}

// flushAuthz files the authorizationInfo element just read.
func (e *gcpEntry) flushAuthz() {
	if e.authzPerm != "" {
		if e.authzGranted {
			e.Granted = append(e.Granted, e.authzPerm)
		} else {
			e.Denied = append(e.Denied, e.authzPerm)
		}
	}
	e.authzPerm, e.authzGranted = "", false
}

func (e *gcpEntry) leaf(path []byte, v cjVal) error {
	if v.kind == 'n' {
		return nil
	}
	var dst *string
	switch string(path) {
	case "protoPayload":
		e.HasPayload = true
		return nil
	case "protoPayload.@type":
		dst = &e.Type
	case "protoPayload.status.code":
		dst = &e.StatusCode
	case "protoPayload.status.message":
		dst = &e.StatusMessage
	case "protoPayload.authenticationInfo.principalEmail":
		dst = &e.PrincipalEmail
	case "protoPayload.authenticationInfo.principalSubject":
		dst = &e.PrincipalSubject
	case "protoPayload.authenticationInfo.serviceAccountKeyName":
		dst = &e.KeyName
	case "protoPayload.authenticationInfo.authoritySelector":
		dst = &e.Authority
	case "protoPayload.requestMetadata.callerIp":
		dst = &e.CallerIP
	case "protoPayload.requestMetadata.callerSuppliedUserAgent":
		dst = &e.UserAgent
	case "protoPayload.requestMetadata.callerNetwork":
		dst = &e.CallerNetwork
	case "protoPayload.serviceName":
		dst = &e.ServiceName
	case "protoPayload.methodName":
		dst = &e.MethodName
	case "protoPayload.resourceName":
		dst = &e.ResourceName
	case "protoPayload.authorizationInfo.permission":
		dst = &e.authzPerm
	case "protoPayload.authorizationInfo.granted":
		e.authzGranted = v.kind == 't'
		return nil
	case "protoPayload.resourceLocation.currentLocations":
		if e.Location != "" {
			return nil // the first location
		}
		dst = &e.Location
	case "insertId":
		dst = &e.InsertID
	case "resource.type":
		dst = &e.ResourceType
	case "resource.labels.project_id":
		dst = &e.ProjectID
	case "resource.labels.region":
		dst = &e.Region
	case "resource.labels.location":
		dst = &e.LocLbl
	case "resource.labels.zone":
		dst = &e.Zone
	case "timestamp":
		dst = &e.Timestamp
	case "severity":
		dst = &e.Severity
	case "logName":
		dst = &e.LogName
	case "trace":
		dst = &e.Trace
	case "operation.id":
		dst = &e.OperationID
	default:
		return nil
	}
	*dst = v.str()
	return nil
}

// gcpSeverity maps LogSeverity names to their numeric values, which ECS
// event.severity takes as is.
var gcpSeverity = map[string]int{
	"DEFAULT": 0, "DEBUG": 100, "INFO": 200, "NOTICE": 300, "WARNING": 400,
	"ERROR": 500, "CRITICAL": 600, "ALERT": 700, "EMERGENCY": 800,
}

// Normalize appends the one event parsed from rec.Data to dst. On error dst
// is returned unchanged and the error names the field.
func (n *GCPAudit) Normalize(dst []schema.Event, rec *ingest.Record) ([]schema.Event, error) {
	data := bytes.TrimSpace(rec.Data)
	if len(data) > MaxJSONRecordBytes {
		return dst, fmt.Errorf("gcp_audit: record is %d bytes, over the %d-byte limit", len(data), MaxJSONRecordBytes)
	}
	if len(data) == 0 || data[0] != '{' {
		return dst, fmt.Errorf("gcp_audit: record is not a JSON object")
	}
	var e gcpEntry
	var path [96]byte
	w := cjWalker{data: data, path: path[:0], enter: e.enter, leaf: e.leaf}
	if err := w.walkAll(); err != nil {
		return dst, fmt.Errorf("gcp_audit: %w", err)
	}
	e.flushAuthz()
	k := len(dst)
	dst = append(dst, schema.Event{})
	if err := gcpMap(&dst[k], &e); err != nil {
		dst[k] = schema.Event{}
		return dst[:k], fmt.Errorf("gcp_audit: %w", err)
	}
	ev := &dst[k]
	ev.Event.ID = rec.ID()
	if e.InsertID != "" {
		h := sha256.Sum256([]byte(e.LogName + "\x00" + e.Timestamp + "\x00" + e.InsertID))
		ev.Event.ID = hex.EncodeToString(h[:16])
	}
	ev.Trailwatch.Source = "gcp_audit"
	ev.Trailwatch.Raw = schema.RawRef{Origin: rec.Origin, Offset: rec.Offset, Collector: rec.Collector}
	ev.Trailwatch.Actor = ev.ActorKey()
	return dst, nil
}

func gcpMap(ev *schema.Event, e *gcpEntry) error {
	switch {
	case !e.HasPayload:
		return errors.New("protoPayload: missing (not an audit log entry)")
	case !e.PayloadObject:
		return errors.New("protoPayload: want an object")
	case e.Type != gcpAuditLogType:
		return fmt.Errorf("protoPayload.@type: %q is not %s", cloudClip(e.Type), gcpAuditLogType)
	case e.Timestamp == "":
		return errors.New("timestamp: missing")
	}
	t, ok := cloudTime(e.Timestamp)
	if !ok {
		return fmt.Errorf("timestamp: invalid time %q", cloudClip(e.Timestamp))
	}
	ev.Timestamp = t
	code := 0
	if c := e.StatusCode; c != "" {
		n, err := strconv.Atoi(c)
		if err != nil {
			return fmt.Errorf("protoPayload.status.code: invalid code %q", cloudClip(c))
		}
		code = n
	}
	arr := &[3]string{"event", "api"}
	ev.Event.Kind = arr[0]
	ev.Event.Category = arr[1:2:2]
	ev.Event.Dataset = "gcp.audit"
	ev.Event.Module = "gcp"
	ev.Event.Action = e.MethodName
	ev.Event.Provider = e.ServiceName
	ev.Service.Name = e.ServiceName
	ev.Event.Severity = gcpSeverity[e.Severity]
	ev.Event.Outcome = "success"
	arr[2] = "info"
	if code != 0 {
		ev.Event.Outcome = "failure"
		ev.Error.Code = strconv.Itoa(code)
		ev.Error.Message = e.StatusMessage
		arr[2] = "error"
	}
	ev.Event.Type = arr[2:3:3]

	ev.User.Email = e.PrincipalEmail
	ev.User.Name = e.PrincipalEmail
	ev.User.ID = e.PrincipalSubject
	cloudRelatedUser(ev, ev.User.Name)
	if e.KeyName != "" {
		ev.Trailwatch.Credential.ID = e.KeyName
		ev.Trailwatch.Credential.Type = "gcpkey"
	}
	// callerIp is "private" or "gce-internal-ip" for some callers; those
	// land in source.address/domain, not source.ip.
	cloudSource(ev, e.CallerIP)
	ev.UserAgent.Original = e.UserAgent

	ev.Cloud.Provider = "gcp"
	ev.Cloud.Account.ID = e.ProjectID
	if ev.Cloud.Account.ID == "" {
		ev.Cloud.Account.ID = gcpProject(e.LogName)
	}
	for _, r := range [...]string{e.Location, e.Region, e.LocLbl, e.Zone} {
		if r != "" {
			ev.Cloud.Region = r
			break
		}
	}
	ev.Trace.ID = e.Trace

	add := func(k, v string) { cloudExtra(ev, 10, k, v) }
	add("gcp.audit.resource_name", e.ResourceName)
	add("gcp.audit.resource_type", e.ResourceType)
	add("gcp.audit.insert_id", e.InsertID)
	add("gcp.audit.caller_network", e.CallerNetwork)
	add("gcp.audit.authority_selector", e.Authority)
	add("gcp.audit.operation_id", e.OperationID)
	add("log.logger", e.LogName)
	add("log.level", e.Severity)
	add("gcp.audit.authorization_info.granted", strings.Join(e.Granted, ","))
	add("gcp.audit.authorization_info.denied", strings.Join(e.Denied, ","))
	return nil
}

// gcpProject reads the project id from "projects/<id>/logs/...".
func gcpProject(logName string) string {
	rest, ok := strings.CutPrefix(logName, "projects/")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, "/")
	return id
}
