package normalize

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Spec names a normalizer and tunes it. A collector's `source` names either
// a built-in type ("nginx") or a spec declared under normalize.sources in
// the configuration, so one deployment can parse two nginx formats.
type Spec struct {
	// Type is the built-in source type ("nginx", "apache", "regex", …).
	Type string `koanf:"type"`
	// Format selects a variant of the type or gives a custom format string:
	// an nginx log_format, an Apache LogFormat, or a named preset.
	Format string `koanf:"format"`
	// Pattern is the regular expression of the regex type; named groups
	// are mapped to ECS fields by Fields.
	Pattern string `koanf:"pattern"`
	// Fields maps a regex named group to a dotted ECS field name.
	Fields map[string]string `koanf:"fields"`
	// TimeLayout is the Go time layout of the regex type's timestamp group.
	TimeLayout string `koanf:"time_layout"`
}

// constructors is the one place that maps source types to parsers.
var constructors = map[string]func(Spec) (Normalizer, error){
	"apache":         NewApacheSpec,
	"aws_alb":        NewAWSALBSpec,
	"aws_apigateway": NewAWSAPIGatewaySpec,
	"aws_elb":        NewAWSELBSpec,
	"caddy":          NewCaddySpec,
	"cloudtrail":     NewCloudTrailSpec,
	"ecs":            NewECSSpec,
	"envoy":          NewEnvoySpec,
	"gcp_audit":      NewGCPAuditSpec,
	"haproxy":        NewHAProxySpec,
	"kong":           NewKongSpec,
	"nginx":          newNginxSpec,
	"regex":          NewRegexSpec,
	"traefik":        NewTraefikSpec,
}

// Build returns the normalizer a spec describes. An unknown type is an error
// listing the known ones.
func Build(s Spec) (Normalizer, error) {
	c, ok := constructors[s.Type]
	if !ok {
		return nil, fmt.Errorf("normalize: unknown source %q (known: %s)", s.Type, strings.Join(Sources(), ", "))
	}
	n, err := c(s)
	if err != nil {
		return nil, fmt.Errorf("normalize %s: %w", s.Type, err)
	}
	return n, nil
}

// New returns the built-in normalizer for a --source name with its default
// format.
func New(source string) (Normalizer, error) { return Build(Spec{Type: source}) }

// Sources lists the built-in source types, sorted.
func Sources() []string { return slices.Sorted(maps.Keys(constructors)) }

// errNoOptions is returned by a type that takes no format or pattern.
var errNoOptions = errors.New("takes no format, pattern or fields")

func newNginxSpec(s Spec) (Normalizer, error) {
	if s.Pattern != "" || len(s.Fields) > 0 || s.TimeLayout != "" {
		return nil, errors.New("pattern, fields and time_layout are not options of nginx: set format")
	}
	switch f := strings.TrimSpace(s.Format); {
	case f == "" || f == "combined":
		return NewNginx(), nil
	case f == "json" || strings.HasPrefix(f, "{") || strings.HasPrefix(f, "escape=json {"):
		return NewNginxJSON(), nil
	default:
		return NewNginxFormat(f)
	}
}
