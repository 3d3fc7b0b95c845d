//go:build soak

package soak

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// The account and region of the synthetic deliveries, and the prefixes
// AWS writes them under (the collector's prefix: one region each).
const (
	s3Account   = "111122223333"
	s3Region    = "us-east-1"
	ctPrefix    = "AWSLogs/" + s3Account + "/CloudTrail/" + s3Region + "/"
	albS3Prefix = "AWSLogs/" + s3Account + "/elasticloadbalancing/" + s3Region + "/"
)

// s3Source is one s3 collector of the collect process's configuration.
type s3Source struct {
	name, source, mode, prefix string
}

// s3Feed plays AWS delivering CloudTrail trails and ALB access logs to a
// bucket of the real S3 gateway (Versity's, from scripts/services.sh):
// one bucket per run, gzip'd objects under AWS's date-partitioned keys,
// every CloudTrail record with a unique eventID and every ALB line with a
// unique path and trace id, so the verifier can find each one in the index.
type s3Feed struct {
	run      string
	bucket   string
	endpoint string
	access   string
	secret   string
	client   *minio.Client

	mu      sync.Mutex
	n       int               // objects uploaded
	ct, alb int               // objects uploaded, by kind
	events  map[string]string // CloudTrail eventID → sourceIPAddress
	lines   map[string]string // ALB url.path → client address
	failed  []string          // uploads given up on
}

// newS3Feed connects to TW_TEST_S3 and creates the run's bucket; the
// bucket and its objects are removed when the test ends. Without the
// gateway the run fails: the soak fakes no service.
func newS3Feed(t testing.TB, run string) *s3Feed {
	t.Helper()
	endpoint := os.Getenv("TW_TEST_S3")
	if endpoint == "" {
		t.Fatal("TW_TEST_S3 is not set: start the S3 gateway with scripts/services.sh start and source its env file")
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		t.Fatalf("TW_TEST_S3=%q: want http://host:port", endpoint)
	}
	f := &s3Feed{
		run: run, bucket: strings.ToLower(run), endpoint: endpoint,
		access: envOr("TW_TEST_S3_ACCESS_KEY", "trailwatch"), secret: envOr("TW_TEST_S3_SECRET_KEY", "trailwatch-secret"),
		events: map[string]string{}, lines: map[string]string{},
	}
	f.client, err = minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(f.access, f.secret, ""),
		Secure:       u.Scheme == "https",
		Region:       s3Region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := f.client.MakeBucket(ctx, f.bucket, minio.MakeBucketOptions{Region: s3Region}); err != nil {
		t.Fatalf("create bucket %s on %s: %v", f.bucket, endpoint, err)
	}
	t.Cleanup(f.removeBucket)
	return f
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// removeBucket empties and removes the run's bucket, best effort: the
// gateway is shared and a leftover bucket only costs disk.
func (f *s3Feed) removeBucket() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for obj := range f.client.ListObjects(ctx, f.bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err == nil {
			_ = f.client.RemoveObject(ctx, f.bucket, obj.Key, minio.RemoveObjectOptions{})
		}
	}
	_ = f.client.RemoveBucket(ctx, f.bucket)
}

// sources are the two s3 collectors the collect process runs.
func (f *s3Feed) sources() []s3Source {
	return []s3Source{
		{name: "s3-cloudtrail", source: "cloudtrail", mode: "object", prefix: ctPrefix},
		{name: "s3-alb", source: "aws_alb", mode: "lines", prefix: albS3Prefix},
	}
}

// collectorYAML is the collect.s3 block for the pipeline configuration:
// a 1s poll and a 1s settle (0 is not expressible: the collect stage
// fills a zero settle with the 24h default). The settle only decides when
// the cursor passes a key; objects are read at the first poll that lists
// them, and this feed writes keys in increasing order from one goroutine.
func (f *s3Feed) collectorYAML() string {
	var b strings.Builder
	b.WriteString("  s3:\n")
	for _, s := range f.sources() {
		fmt.Fprintf(&b, "    - {name: %s, source: %s, mode: %s, bucket: %s, prefix: %q, endpoint: %q, use_path_style: true, region: %s,\n",
			s.name, s.source, s.mode, f.bucket, s.prefix, f.endpoint, s3Region)
		fmt.Fprintf(&b, "       access_key_id: %s, secret_access_key: %q, poll_interval: 1s, settle: 1s, request_timeout: 10s}\n",
			f.access, f.secret)
	}
	return b.String()
}

// runFor uploads an object every `every`, alternating CloudTrail and ALB,
// each with 20 to 50 records, until ctx ends or d passed.
func (f *s3Feed) runFor(ctx context.Context, d, every time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
	tick := time.NewTicker(every)
	defer tick.Stop()
	for k := 0; ; k++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n := 20 + rng.IntN(31)
		if k%2 == 0 {
			f.uploadCloudTrail(ctx, k, n)
		} else {
			f.uploadALB(ctx, k, n)
		}
	}
}

// uploadCloudTrail writes one trail file of n records.
func (f *s3Feed) uploadCloudTrail(ctx context.Context, k, n int) {
	now := time.Now().UTC()
	type rec = map[string]any
	var recs []rec
	ids := map[string]string{}
	for i := range n {
		id := fmt.Sprintf("%s-ct-%04d-%03d", f.run, k, i)
		ip := fmt.Sprintf("10.41.%d.%d", k%200, i+1)
		ids[id] = ip
		user := fmt.Sprintf("soak-user-%02d", i%10)
		recs = append(recs, rec{
			"eventVersion": "1.09",
			"userIdentity": rec{
				"type": "IAMUser", "principalId": "AIDASOAK" + strings.ToUpper(user[len(user)-2:]),
				"arn": "arn:aws:iam::" + s3Account + ":user/" + user, "accountId": s3Account, "userName": user,
			},
			"eventTime":          now.Add(time.Duration(i) * time.Millisecond).Format(time.RFC3339Nano),
			"eventSource":        "s3.amazonaws.com",
			"eventName":          []string{"GetObject", "ListBuckets", "PutObject"}[i%3],
			"awsRegion":          s3Region,
			"sourceIPAddress":    ip,
			"userAgent":          "trailwatch-soak/1.0",
			"requestParameters":  nil,
			"responseElements":   nil,
			"requestID":          fmt.Sprintf("SOAKREQ%04d%03d", k, i),
			"eventID":            id,
			"readOnly":           i%3 != 2,
			"eventType":          "AwsApiCall",
			"managementEvent":    false,
			"recipientAccountId": s3Account,
			"eventCategory":      "Data",
		})
	}
	body, err := json.Marshal(map[string]any{"Records": recs})
	if err != nil {
		panic(err) // maps of strings: cannot fail
	}
	key := fmt.Sprintf("%s%s/%s_CloudTrail_%s_%s_%06d.json.gz",
		ctPrefix, now.Format("2006/01/02"), s3Account, s3Region, now.Format("20060102T1504Z"), k)
	if f.put(ctx, key, body) {
		f.mu.Lock()
		f.n++
		f.ct++
		for id, ip := range ids {
			f.events[id] = ip
		}
		f.mu.Unlock()
	}
}

// uploadALB writes one ALB access-log object of n lines.
func (f *s3Feed) uploadALB(ctx context.Context, k, n int) {
	now := time.Now().UTC()
	var b strings.Builder
	paths := map[string]string{}
	for i := range n {
		path := fmt.Sprintf("/s3alb/%s/%04d/%03d", f.run, k, i)
		ip := fmt.Sprintf("10.42.%d.%d", k%200, i+1)
		paths[path] = ip
		at := now.Add(time.Duration(i) * time.Millisecond)
		// type time elb client:port target:port 3×processing_time
		// elb_status target_status received sent "request" "user_agent"
		// ssl_cipher ssl_protocol target_group_arn "trace_id" "domain"
		// "cert_arn" priority creation_time "actions" "redirect" "error"
		// "targets" "target_statuses" "classification" "reason" conn_trace_id
		fmt.Fprintf(&b, `http %s app/soak-lb/50dc6c495c0c9188 %s:%d 10.0.0.1:80 0.000 0.002 0.000 200 200 120 512 "GET http://soak.example.com:80%s HTTP/1.1" "trailwatch-soak/1.0" - - arn:aws:elasticloadbalancing:%s:%s:targetgroup/soak/73e2d6bc24d8a067 "Root=1-%08x-%012x%012x" "-" "-" 0 %s "forward" "-" "-" "10.0.0.1:80" "200" "-" "-" TID_%08x%08x`+"\n",
			at.Format("2006-01-02T15:04:05.000000Z"), ip, 40000+i, path, s3Region, s3Account,
			at.Unix(), k, i, at.Add(-time.Millisecond).Format("2006-01-02T15:04:05.000000Z"), k, i)
	}
	key := fmt.Sprintf("%s%s/%s_elasticloadbalancing_%s_app.soak-lb.50dc6c495c0c9188_%s_10.0.0.1_%06d.log.gz",
		albS3Prefix, now.Format("2006/01/02"), s3Account, s3Region, now.Format("20060102T1504Z"), k)
	if f.put(ctx, key, []byte(b.String())) {
		f.mu.Lock()
		f.n++
		f.alb++
		for p, ip := range paths {
			f.lines[p] = ip
		}
		f.mu.Unlock()
	}
}

// put gzips body and uploads it under key, trying three times (a retried
// PUT of the same bytes is the same object, same ETag). It reports whether
// the object is in the bucket; a failure is kept for the report.
func (f *s3Feed) put(ctx context.Context, key string, body []byte) bool {
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	_, _ = zw.Write(body)
	_ = zw.Close()
	var err error
	for range 3 {
		// Not bound to ctx: the traffic phase ending must not cut an
		// upload in half and leave its records unaccounted for.
		pctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, err = f.client.PutObject(pctx, f.bucket, key, bytes.NewReader(zb.Bytes()), int64(zb.Len()),
			minio.PutObjectOptions{ContentType: "application/x-gzip"})
		cancel()
		if err == nil {
			return true
		}
		pause(ctx, time.Second)
	}
	f.mu.Lock()
	f.failed = append(f.failed, fmt.Sprintf("%s: %v", key, err))
	f.mu.Unlock()
	return false
}

// s3Check tallies what the index holds of the feed's records.
type s3Check struct {
	events, lines map[string]int // indexed documents per eventID / path
	wrong         int
	invented      int
	firstWrong    []string
}

// take counts d if it is a CloudTrail or ALB document and reports
// whether it was one; other documents are left to the request checks.
func (f *s3Feed) take(c *s3Check, d *schema.Event) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	var (
		key, ip string
		ok      bool
		seen    map[string]int
	)
	switch d.Trailwatch.Source {
	case "cloudtrail":
		key, seen = d.Event.ID, c.events
		ip, ok = f.events[key]
	case "aws_alb":
		key, seen = d.URL.Path, c.lines
		ip, ok = f.lines[key]
	default:
		return false
	}
	if !ok {
		c.invented++
		return true
	}
	seen[key]++
	if seen[key] == 1 && d.Source.IP != ip {
		c.wrong++
		if len(c.firstWrong) < 3 {
			c.firstWrong = append(c.firstWrong, fmt.Sprintf("%s %s indexed with source.ip=%s, uploaded %s", d.Trailwatch.Source, key, d.Source.IP, ip))
		}
	}
	return true
}

// report fills the S3 rows of r from c.
func (f *s3Feed) report(c *s3Check, r *report) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r.S3Objects, r.S3CTObjects, r.S3ALBObjects = f.n, f.ct, f.alb
	tally := func(want map[string]string, got map[string]int) (in, indexed, missing, dups int) {
		for k := range want {
			switch n := got[k]; {
			case n == 0:
				missing++
			default:
				indexed++
				dups += n - 1
			}
		}
		return len(want), indexed, missing, dups
	}
	r.CTIn, r.CTIndexed, r.CTMissing, r.CTDuplicates = tally(f.events, c.events)
	r.ALBIn, r.ALBIndexed, r.ALBMissing, r.ALBDuplicates = tally(f.lines, c.lines)
	r.Invented += c.invented
	r.WrongFields += c.wrong
	for _, w := range c.firstWrong {
		r.problem("%s", w)
	}
	for _, e := range f.failed {
		r.problem("S3 upload failed: %s", e)
	}
	if r.CTIn == 0 || r.ALBIn == 0 {
		r.problem("the S3 feed uploaded %d CloudTrail records and %d ALB lines; want some of each", r.CTIn, r.ALBIn)
	}
	if r.CTMissing > 0 || r.ALBMissing > 0 {
		r.problem("S3 records missing from the index: %d CloudTrail, %d ALB", r.CTMissing, r.ALBMissing)
	}
	if r.CTDuplicates > 0 || r.ALBDuplicates > 0 {
		r.problem("S3 records indexed more than once: %d CloudTrail, %d ALB duplicates", r.CTDuplicates, r.ALBDuplicates)
	}
	if c.invented > 0 {
		r.problem("%d CloudTrail/ALB documents in the index that the S3 feed never uploaded", c.invented)
	}
}
