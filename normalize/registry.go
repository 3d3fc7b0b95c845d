package normalize

import (
	"fmt"
	"strings"
)

// New returns the normalizer for a --source name. The switch is the one
// place that maps source names to parsers; an unknown name is an error
// listing the known ones.
func New(source string) (Normalizer, error) {
	switch source {
	case "nginx":
		return NewNginx(), nil
	}
	return nil, fmt.Errorf("normalize: unknown source %q (known: %s)", source, strings.Join(Sources(), ", "))
}

// Sources lists the source names New accepts, sorted.
func Sources() []string {
	return []string{"nginx"}
}
