// Package kibana holds trailwatch's Kibana saved objects (data views,
// saved searches, Lens visualizations and dashboards, in assets/*.ndjson,
// the format Kibana's own export writes) and imports them through Kibana's
// saved-objects import API. It also builds Discover links to an alert's
// events (DiscoverURL).
//
// Import overwrites objects with the same ids, so running it again
// updates the dashboards to the version shipped with this build and is
// otherwise a no-op; edits made in Kibana to these objects are replaced
// (save a copy under another name to keep them). It does not create spaces,
// data, or index templates (`trailwatch setup elasticsearch` does those),
// and it does not talk to OpenSearch Dashboards, whose saved-object format
// differs.
package kibana

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"path"
	"slices"
	"strings"

	"github.com/trailwatch/trailwatch/internal/config"
)

//go:embed assets/*.ndjson
var assets embed.FS

// Object is one saved object as Kibana exports it.
type Object struct {
	ID                   string          `json:"id"`
	Type                 string          `json:"type"`
	CoreMigrationVersion string          `json:"coreMigrationVersion"`
	TypeMigrationVersion string          `json:"typeMigrationVersion"`
	Managed              bool            `json:"managed"`
	Attributes           json.RawMessage `json:"attributes"`
	References           []Reference     `json:"references"`
}

// Reference is a saved object's link to another one.
type Reference struct {
	Name string `json:"name"`
	Type string `json:"type"`
	ID   string `json:"id"`
}

// Assets returns the NDJSON the importer sends: every asset file, data
// views first, so a reader sees objects before what refers to them.
func Assets() ([]byte, error) {
	names, err := assetFiles()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	for _, n := range names {
		b, err := assets.ReadFile(n)
		if err != nil {
			return nil, err
		}
		buf.Write(b)
		if len(b) > 0 && b[len(b)-1] != '\n' {
			buf.WriteByte('\n')
		}
	}
	return buf.Bytes(), nil
}

// Objects parses Assets into objects.
func Objects() ([]Object, error) {
	b, err := Assets()
	if err != nil {
		return nil, err
	}
	var out []Object
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var o Object
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			return nil, fmt.Errorf("kibana assets: object %d: %w", line, err)
		}
		out = append(out, o)
	}
	return out, sc.Err()
}

// assetFiles lists the asset files in import order.
func assetFiles() ([]string, error) {
	names, err := assets.ReadDir("assets")
	if err != nil {
		return nil, err
	}
	order := []string{"data-views.ndjson", "searches.ndjson", "lens.ndjson", "dashboards.ndjson"}
	var out []string
	for _, e := range names {
		out = append(out, e.Name())
	}
	slices.SortFunc(out, func(a, b string) int {
		ia, ib := slices.Index(order, a), slices.Index(order, b)
		if ia < 0 {
			ia = len(order)
		}
		if ib < 0 {
			ib = len(order)
		}
		if ia != ib {
			return ia - ib
		}
		return strings.Compare(a, b)
	})
	for i, n := range out {
		out[i] = path.Join("assets", n)
	}
	return out, nil
}

// Importer sends the assets to Kibana's saved-objects import API.
type Importer struct {
	cfg    Config
	log    *slog.Logger
	client *http.Client
	auth   func(*http.Request)
}

// New validates cfg, resolves its secrets and builds the HTTP client. It
// does not contact Kibana.
func New(cfg Config, logger *slog.Logger) (*Importer, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultConfig().Timeout
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("kibana: %w", err)
	}
	if cfg.URL == "" {
		return nil, errors.New("kibana: url: required")
	}
	password, err := config.ResolveSecret("password", cfg.Password, cfg.PasswordFile)
	if err != nil {
		return nil, fmt.Errorf("kibana: %w", err)
	}
	apiKey, err := config.ResolveSecret("api_key", cfg.APIKey, cfg.APIKeyFile)
	if err != nil {
		return nil, fmt.Errorf("kibana: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.CAFile != "" {
		pool, err := config.LoadCAPool(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kibana: %w", err)
		}
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	}
	auth := func(*http.Request) {}
	switch {
	case apiKey.IsSet():
		auth = func(r *http.Request) { r.Header.Set("Authorization", "ApiKey "+apiKey.Value()) }
	case cfg.Username != "":
		auth = func(r *http.Request) { r.SetBasicAuth(cfg.Username, password.Value()) }
	}
	return &Importer{cfg: cfg, log: logger, client: &http.Client{Transport: tr, Timeout: cfg.Timeout}, auth: auth}, nil
}

// ImportURL is where Import posts: the space's import API with
// overwrite=true.
func (im *Importer) ImportURL() string {
	return im.cfg.Base() + "/api/saved_objects/_import?overwrite=true"
}

// Result is Kibana's answer to an import.
type Result struct {
	// Success is true when every object was imported.
	Success bool `json:"success"`
	// SuccessCount is how many objects were imported.
	SuccessCount int `json:"successCount"`
	// Errors lists the objects Kibana refused, each with its reason.
	Errors []ObjectError `json:"errors"`
}

// ObjectError is one object Kibana did not import.
type ObjectError struct {
	ID    string `json:"id"`
	Type  string `json:"type"`
	Title string `json:"title"`
	Error struct {
		// Type is conflict, ambiguous_conflict, missing_references,
		// unsupported_type or unknown.
		Type       string      `json:"type"`
		Message    string      `json:"message"`
		References []Reference `json:"references"`
	} `json:"error"`
}

// String names the object and why it failed.
func (e ObjectError) String() string {
	s := fmt.Sprintf("%s %s (%s): %s", e.Type, e.ID, e.Title, e.Error.Type)
	if e.Error.Message != "" {
		s += ": " + e.Error.Message
	}
	for _, r := range e.Error.References {
		s += fmt.Sprintf(" [missing %s %s]", r.Type, r.ID)
	}
	return s
}

// Import posts every asset in one multipart request (the file field
// Kibana's import API reads) with the kbn-xsrf header Kibana requires. It
// returns Kibana's result, and an error when the request failed or any
// object was refused (each named in the error).
func (im *Importer) Import(ctx context.Context) (Result, error) {
	nd, err := Assets()
	if err != nil {
		return Result{}, fmt.Errorf("kibana: %w", err)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="trailwatch.ndjson"`)
	h.Set("Content-Type", "application/ndjson")
	part, err := mw.CreatePart(h)
	if err != nil {
		return Result{}, fmt.Errorf("kibana: %w", err)
	}
	if _, err := part.Write(nd); err != nil {
		return Result{}, fmt.Errorf("kibana: %w", err)
	}
	if err := mw.Close(); err != nil {
		return Result{}, fmt.Errorf("kibana: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, im.ImportURL(), &body)
	if err != nil {
		return Result{}, fmt.Errorf("kibana: %w", err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("kbn-xsrf", "trailwatch")
	im.auth(req)
	res, err := im.client.Do(req)
	if err != nil {
		// *url.Error holds the URL, which holds no credentials (Validate
		// refuses user info in it).
		return Result{}, fmt.Errorf("kibana: import: %w", err)
	}
	defer func() { _ = res.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if err != nil {
		return Result{}, fmt.Errorf("kibana: import: read answer: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		var e struct {
			Message string `json:"message"`
		}
		msg := strings.TrimSpace(string(raw))
		if json.Unmarshal(raw, &e) == nil && e.Message != "" {
			msg = e.Message
		}
		if len(msg) > 512 {
			msg = msg[:512] + "…"
		}
		return Result{}, fmt.Errorf("kibana: import: %d %s: %s", res.StatusCode, http.StatusText(res.StatusCode), msg)
	}
	var r Result
	if err := json.Unmarshal(raw, &r); err != nil {
		return Result{}, fmt.Errorf("kibana: import: answer is not JSON: %w", err)
	}
	if len(r.Errors) > 0 || !r.Success {
		errs := make([]error, 0, len(r.Errors))
		for _, e := range r.Errors {
			errs = append(errs, errors.New(e.String()))
		}
		return r, fmt.Errorf("kibana: import: %d of %d objects refused: %w",
			len(r.Errors), len(r.Errors)+r.SuccessCount, errors.Join(errs...))
	}
	im.log.Info("kibana objects imported", "count", r.SuccessCount, "url", im.cfg.Base())
	return r, nil
}
