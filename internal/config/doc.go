// Package config loads trailwatch's configuration with koanf: defaults from
// a struct, then a YAML file, then TRAILWATCH_ environment variables ("__"
// nests), then flags. Unknown keys are refused, and every problem is reported
// at once with its dotted path. Secrets use the Secret type, which never
// prints.
package config
