package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/detect"
	"github.com/trailwatch/trailwatch/enrich"
	"github.com/trailwatch/trailwatch/ingest/file"
	"github.com/trailwatch/trailwatch/internal/config"
	"github.com/trailwatch/trailwatch/internal/health"
	"github.com/trailwatch/trailwatch/internal/integrity"
	"github.com/trailwatch/trailwatch/internal/kafka"
	"github.com/trailwatch/trailwatch/internal/replay"
	"github.com/trailwatch/trailwatch/internal/stages"
	"github.com/trailwatch/trailwatch/internal/telemetry"
	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/outputs/elasticsearch"
	outfile "github.com/trailwatch/trailwatch/outputs/file"
	"github.com/trailwatch/trailwatch/outputs/kibana"
	"github.com/trailwatch/trailwatch/outputs/route"
	"github.com/trailwatch/trailwatch/outputs/slack"
	"github.com/trailwatch/trailwatch/outputs/webhook"
)

// Stage names accepted by `stages` / --stages.
const (
	stageCollect   = "collect"
	stageNormalize = "normalize"
	stageDetect    = "detect"
	stageIndex     = "index"
	stageNotify    = "notify"
	// stageIntegrity signs the raw topic's hash chains; not in the default
	// list, as it needs a signing key (docs/integrity.md).
	stageIntegrity = "integrity"
)

var allStages = []string{stageCollect, stageNormalize, stageDetect, stageIndex, stageNotify}

// optionalStages run only when listed in `stages`.
var optionalStages = []string{stageIntegrity}

// Config is the whole configuration; docs/configuration.md documents every
// key. The zero-flag defaults give the embedded mode.
type Config struct {
	// DataDir holds checkpoints, the embedded broker's log and NDJSON output.
	DataDir string `koanf:"data_dir"`
	// Stages lists the stages this process runs.
	Stages []string `koanf:"stages"`
	// GCHeapFloorMB is the heap size below which the garbage collector is
	// not run (internal/gctune); 0 leaves the runtime's default.
	GCHeapFloorMB int `koanf:"gc_heap_floor_mb"`
	// Log configures the process's own logs.
	Log LogConfig `koanf:"log"`
	// HTTP is the telemetry listener (/metrics, /healthz, /readyz).
	HTTP telemetry.Config `koanf:"http"`
	// Kafka connects to the brokers; no brokers means the embedded one.
	Kafka kafka.Config `koanf:"kafka"`
	// Collect configures the collectors.
	Collect CollectConfig `koanf:"collect"`
	// Normalize declares named sources (a type plus its format).
	Normalize NormalizeConfig `koanf:"normalize"`
	// Enrich configures the enrichment run by the detect stage.
	Enrich enrich.Config `koanf:"enrich"`
	// Detect configures the rules and the detection engine.
	Detect DetectConfig `koanf:"detect"`
	// Index configures where events and alerts are stored.
	Index IndexConfig `koanf:"index"`
	// Notify configures who is paged.
	Notify NotifyConfig `koanf:"notify"`
	// Integrity configures the signed checkpoints of the raw topic.
	Integrity integrity.Config `koanf:"integrity"`
	// Kibana is where `trailwatch setup kibana` imports the dashboards and
	// what alert links to Discover point at.
	Kibana kibana.Config `koanf:"kibana"`
}

// LogConfig configures logging.
type LogConfig struct {
	// Level is debug, info, warn or error.
	Level string `koanf:"level"`
	// Format is text or json.
	Format string `koanf:"format"`
}

// NormalizeConfig declares named sources.
type NormalizeConfig struct {
	// Sources maps a source name, used by collectors, to its spec.
	Sources map[string]normalize.Spec `koanf:"sources"`
}

// spec resolves a collector's source name.
func (n NormalizeConfig) spec(name string) normalize.Spec {
	if s, ok := n.Sources[name]; ok {
		return s
	}
	return normalize.Spec{Type: name}
}

// DetectConfig configures detection.
type DetectConfig struct {
	// Rules are directories or files of YAML rules.
	Rules []string `koanf:"rules"`
	// AllowedLateness is how late (event time) an event may be and still count.
	AllowedLateness time.Duration `koanf:"allowed_lateness"`
	// MaxGroups bounds the window states held per partition.
	MaxGroups int `koanf:"max_groups"`
	// DedupIDs is how many recent event ids each partition remembers to
	// count an event delivered twice once.
	DedupIDs int `koanf:"dedup_ids"`
	// ReloadInterval is how often the rule files are checked for changes
	// (SIGHUP reloads at once); 0 disables the check.
	ReloadInterval time.Duration `koanf:"reload_interval"`
	// Health configures the alerts on the pipeline itself (silent sources,
	// failing rules, consumer lag).
	Health health.Config `koanf:"health"`
	// RetroHunt runs new or changed rules over the recent past when the
	// rules reload (docs/replay.md).
	RetroHunt replay.RetroConfig `koanf:"retro_hunt"`
}

// IndexConfig chooses the document sink.
type IndexConfig struct {
	// Type is file, elasticsearch or none.
	Type string `koanf:"type"`
	// Elasticsearch configures the elasticsearch type (also OpenSearch).
	Elasticsearch elasticsearch.Config `koanf:"elasticsearch"`
	// File configures the file type (NDJSON under <data_dir>/output by default).
	File outfile.Config `koanf:"file"`
	// BatchesInFlight is how many polled batches the index stage works on
	// at once: the next is read and encoded while the sink indexes one.
	BatchesInFlight int `koanf:"batches_in_flight"`
}

// NotifyConfig chooses the notifiers.
type NotifyConfig struct {
	// Console prints each alert on stderr.
	Console bool `koanf:"console"`
	// Slack pages through Slack when a webhook URL or a token is set.
	Slack slack.Config `koanf:"slack"`
	// DedupTTL is how long the record of a sent alert is kept.
	DedupTTL time.Duration `koanf:"dedup_ttl"`
	// Webhooks POST alerts as templated, signed JSON.
	Webhooks []webhook.Config `koanf:"webhooks"`
	// Response configures response actions (dry-run by default).
	Response webhook.ActionsConfig `koanf:"response"`
}

func defaultConfig() Config {
	demo := file.DefaultConfig()
	demo.Name = "demo"
	demo.Paths = []string{"testdata/demo/*.log"}
	demo.Source = "nginx"
	dc := detect.DefaultConfig()
	c := Config{
		DataDir: "./data",
		Stages:  slices.Clone(allStages),
		// Stages hold a few MB live while passing hundreds of MB a second
		// through: without a floor the runtime collects every 4 MB
		// (docs/benchmarks.md, "GC floor").
		GCHeapFloorMB: 128,
		Log:           LogConfig{Level: "info", Format: "text"},
		HTTP:          telemetry.Config{Listen: "127.0.0.1:9464"},
		Kafka:         kafka.DefaultConfig(),
		Collect:       CollectConfig{Files: []file.Config{demo}},
		Enrich:        enrich.DefaultConfig(),
		Detect:        DetectConfig{Rules: []string{"rules"}, AllowedLateness: dc.AllowedLateness, MaxGroups: dc.MaxGroups, DedupIDs: 16384, ReloadInterval: 10 * time.Second, Health: health.DefaultConfig(), RetroHunt: replay.DefaultRetroConfig()},
		Index:         IndexConfig{Type: "file", Elasticsearch: elasticsearch.DefaultConfig(), File: outfile.DefaultConfig(), BatchesInFlight: 2},
		Notify:        NotifyConfig{Console: true, Slack: slack.DefaultConfig(), DedupTTL: stages.DefaultSentTTL, Response: webhook.DefaultActionsConfig()},
		Kibana:        kibana.DefaultConfig(),
	}
	c.Integrity = integrity.DefaultConfig()
	return c
}

// loadConfig reads the configuration and validates it whole.
func loadConfig(path string, environ []string, overrides map[string]any) (Config, error) {
	var c Config
	if err := config.Load(&c, defaultConfig(), config.Sources{File: path, Environ: environ, Overrides: overrides}); err != nil {
		return c, err
	}
	c.applyDefaults()
	return c, c.validate()
}

// applyDefaults fills what depends on other keys: collector defaults for
// entries a config file listed, checkpoint files under the data dir.
func (c *Config) applyDefaults() {
	c.Collect.applyDefaults(c.DataDir)
	if c.Index.File.Dir == "" {
		c.Index.File.Dir = filepath.Join(c.DataDir, "output")
	}
	if c.Notify.Response.AuditFile == "" {
		c.Notify.Response.AuditFile = filepath.Join(c.DataDir, "actions-audit.ndjson")
	}
}

func (c *Config) validate() error {
	var errs []error
	add := func(section string, err error) {
		if err != nil {
			errs = append(errs, config.Prefix(section, err))
		}
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir: required"))
	}
	if len(c.Stages) == 0 {
		errs = append(errs, errors.New("stages: at least one stage"))
	}
	for _, s := range c.Stages {
		if !slices.Contains(allStages, s) && !slices.Contains(optionalStages, s) {
			errs = append(errs, fmt.Errorf("stages: unknown stage %q (known: %s)", s, strings.Join(append(slices.Clone(allStages), optionalStages...), ", ")))
		}
	}
	if _, err := parseLevel(c.Log.Level); err != nil {
		errs = append(errs, fmt.Errorf("log.level: %w", err))
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		errs = append(errs, fmt.Errorf("log.format: %q is not text or json", c.Log.Format))
	}
	add("http", c.HTTP.Validate())
	add("kibana", c.Kibana.Validate())
	add("kafka", c.Kafka.Validate())
	for name, spec := range c.Normalize.Sources {
		if _, err := normalize.Build(spec); err != nil {
			errs = append(errs, fmt.Errorf("normalize.sources.%s: %w", name, err))
		}
	}
	if c.runs(stageCollect) {
		errs = append(errs, c.Collect.validate(c.Normalize)...)
	}
	if c.runs(stageDetect) {
		add("enrich", c.Enrich.Validate())
		add("detect", detect.Config{AllowedLateness: c.Detect.AllowedLateness, MaxGroups: c.Detect.MaxGroups}.Validate())
		if c.Detect.Health.Enabled {
			add("detect.health", c.Detect.Health.Validate())
		}
		add("detect.retro_hunt", c.Detect.RetroHunt.Validate())
		if c.Detect.DedupIDs < 0 {
			errs = append(errs, errors.New("detect.dedup_ids: must not be negative"))
		}
		if c.Detect.ReloadInterval < 0 {
			errs = append(errs, errors.New("detect.reload_interval: must not be negative"))
		}
		if len(c.Detect.Rules) == 0 {
			errs = append(errs, errors.New("detect.rules: at least one directory"))
		}
	}
	if c.runs(stageIndex) {
		switch c.Index.Type {
		case "file", "none":
		case "elasticsearch":
			add("index.elasticsearch", c.Index.Elasticsearch.Validate())
		default:
			errs = append(errs, fmt.Errorf("index.type: %q is not file, elasticsearch or none", c.Index.Type))
		}
	}
	if c.GCHeapFloorMB < 0 {
		errs = append(errs, fmt.Errorf("gc_heap_floor_mb: %d is negative", c.GCHeapFloorMB))
	}
	if c.runs(stageIndex) && (c.Index.BatchesInFlight < 1 || c.Index.BatchesInFlight > 8) {
		errs = append(errs, fmt.Errorf("index.batches_in_flight: %d is not between 1 and 8", c.Index.BatchesInFlight))
	}
	if c.runs(stageIndex) && c.Index.Type == "file" {
		add("index.file", c.Index.File.Validate())
	}
	if c.Notify.DedupTTL < time.Hour {
		errs = append(errs, errors.New("notify.dedup_ttl: must be at least 1h"))
	}
	switch {
	case c.Integrity.Mode == integrity.ModeNormalize && c.runs(stageIntegrity):
		errs = append(errs, errors.New("stages: integrity.mode is normalize, so the normalize stages build the chain: remove integrity from stages"))
	case c.runs(stageIntegrity), c.Integrity.Mode == integrity.ModeNormalize && c.runs(stageNormalize):
		add("integrity", c.Integrity.Validate(true))
	default:
		add("integrity", c.Integrity.Validate(false))
	}
	if c.runs(stageNotify) && slackEnabled(c.Notify.Slack) {
		add("notify.slack", c.Notify.Slack.Validate())
	}
	if c.runs(stageNotify) {
		for i, w := range c.Notify.Webhooks {
			add(fmt.Sprintf("notify.webhooks[%d]", i), w.Validate())
		}
		add("notify.response", c.Notify.Response.Validate())
	}
	return errors.Join(errs...)
}

// slackEnabled reports whether a Slack destination is configured at all.
func slackEnabled(s slack.Config) bool {
	return s.WebhookURL != "" || s.WebhookURLFile != "" || s.Token != "" || s.TokenFile != ""
}

func (c *Config) runs(stage string) bool { return slices.Contains(c.Stages, stage) }

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(s))
	return l, err
}

func newLogger(c LogConfig) *slog.Logger {
	lvl, _ := parseLevel(c.Level)
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// routeNames returns every route name the notify configuration matches on
// (match.routes of Slack routes, webhooks and response actions).
func (n NotifyConfig) routeNames() map[string]bool {
	names := map[string]bool{}
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		if v.Type() == reflect.TypeFor[route.Match]() {
			for _, r := range v.Interface().(route.Match).Routes {
				names[r] = true
			}
			return
		}
		switch v.Kind() {
		case reflect.Struct:
			for i := range v.NumField() {
				if v.Type().Field(i).IsExported() {
					walk(v.Field(i))
				}
			}
		case reflect.Slice:
			for i := range v.Len() {
				walk(v.Index(i))
			}
		}
	}
	walk(reflect.ValueOf(n))
	return names
}

// unroutedRoutes returns the route names rules use that no notifier
// matches on: alerts carrying only those go to the default destinations,
// which is most likely a typo in a rule or in the configuration.
func unroutedRoutes(used []string, n NotifyConfig) []string {
	known := n.routeNames()
	var out []string
	for _, r := range used {
		if !known[r] {
			out = append(out, r)
		}
	}
	return out
}
