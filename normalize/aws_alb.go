package normalize

import (
	"strconv"
	"time"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// AWSALB parses Application Load Balancer access log lines, every field AWS
// documents:
//
//	type time elb client:port target:port request_processing_time target_processing_time response_processing_time elb_status_code target_status_code received_bytes sent_bytes "request" "user_agent" ssl_cipher ssl_protocol target_group_arn "trace_id" "domain_name" "chosen_cert_arn" matched_rule_priority request_creation_time "actions_executed" "redirect_url" "error_reason" "target:port_list" "target_status_code_list" "classification" "classification_reason" conn_trace_id "transformed_host" "transformed_uri" "request_transform_status"
//
// A line may end after any field from "request" on (older balancers wrote
// fewer), and fields AWS appends in future are kept as trailwatch.extra
// "aws.elb.field_N", N their 1-based position. "-" is absent throughout; a
// processing time of -1 sets no event.duration.
//
// The mapping follows Elastic's aws integration (elb_logs data stream):
// trace_id goes to trace.id, ssl_* to tls.*, domain_name (the SNI the
// client sent) to tls.client.server_name, the target group ARN's region and
// account to cloud.region and cloud.account.id, and what ECS has no field
// for to trailwatch.extra with Elastic's aws.elb.* names. AWSALB is
// stateless and safe for concurrent use.
type AWSALB struct{}

// NewAWSALB returns the Application Load Balancer access log normalizer.
func NewAWSALB() *AWSALB { return &AWSALB{} }

// NewAWSALBSpec builds the aws_alb normalizer from a spec; it takes no
// options.
func NewAWSALBSpec(s Spec) (Normalizer, error) {
	if s.Format != "" || s.Pattern != "" || len(s.Fields) > 0 || s.TimeLayout != "" {
		return nil, errNoOptions
	}
	return NewAWSALB(), nil
}

// albNames names the ALB fields for errors, 0-based.
var albNames = [...]string{
	"type", "time", "elb", "client:port", "target:port", "request_processing_time",
	"target_processing_time", "response_processing_time", "elb_status_code",
	"target_status_code", "received_bytes", "sent_bytes", "request", "user_agent",
	"ssl_cipher", "ssl_protocol", "target_group_arn", "trace_id", "domain_name",
	"chosen_cert_arn", "matched_rule_priority", "request_creation_time",
	"actions_executed", "redirect_url", "error_reason", "target:port_list",
	"target_status_code_list", "classification", "classification_reason",
	"conn_trace_id", "transformed_host", "transformed_uri", "request_transform_status",
}

// albExtraKeys gives the trailwatch.extra key of the ALB fields after
// ssl_protocol that are stored as logged; "" marks fields mapped otherwise.
var albExtraKeys = [...]string{
	16: "aws.elb.target_group.arn",
	17: "", // trace_id → trace.id
	18: "", // domain_name → tls.client.server_name
	19: "aws.elb.chosen_cert.arn",
	20: "aws.elb.matched_rule_priority",
	21: "aws.elb.request_creation_time",
	22: "aws.elb.action_executed",
	23: "aws.elb.redirect_url",
	24: "aws.elb.error.reason",
	25: "aws.elb.target_port",
	26: "aws.elb.target_status_code",
	27: "aws.elb.classification",
	28: "aws.elb.classification_reason",
	29: "aws.elb.conn_trace_id",
	30: "aws.elb.transformed_host",
	31: "aws.elb.transformed_uri",
	32: "aws.elb.request_transform_status",
}

// Normalize appends the one event parsed from rec.Data to dst. On error dst
// is returned unchanged and the error names the field.
func (n *AWSALB) Normalize(dst []schema.Event, rec *ingest.Record) ([]schema.Event, error) {
	return elbNormalize(dst, rec, "aws_alb", albNames[:], 1)
}

// albTail maps what only an ALB line has: its type, target group, trace
// and the fields after ssl_protocol. v is the whole line.
func albTail(ev *schema.Event, v []string, x *cloudKV) {
	field := func(i int) string {
		if i < len(v) && v[i] != "-" {
			return v[i]
		}
		return ""
	}
	ev.Observer.Product = "Application Load Balancer"
	x.add("aws.elb.type", field(0))
	if arn := field(16); arn != "" {
		ev.Cloud.Region, ev.Cloud.Account.ID = cloudARN(arn)
	}
	ev.Trace.ID = field(17)
	ev.TLS.Client.ServerName = field(18)
	for i := 16; i < len(v); i++ {
		switch {
		case i < len(albExtraKeys):
			if albExtraKeys[i] != "" {
				x.add(albExtraKeys[i], field(i))
			}
		case field(i) != "":
			x.add("aws.elb.field_"+strconv.Itoa(i+1), v[i])
		}
	}
	// event.duration: from the request's arrival to the response's last
	// byte when ALB logged both; the processing-time sum otherwise.
	if start, ok := cloudTime(field(21)); ok {
		if d := ev.Timestamp.Sub(start); d >= 0 && d < 24*time.Hour {
			ev.Event.Duration = int64(d)
		}
	}
}
