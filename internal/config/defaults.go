package config

import "reflect"

// FillDefaults sets every zero-valued field of *dst to the value of the same
// field in def, descending into nested structs. It completes the entries of
// a configured list (koanf replaces a list whole, so defaults do not reach
// its elements). A field explicitly set to its zero value (false, 0, "")
// cannot be told from an unset one and takes the default: components
// choose defaults so that zero means "unset".
func FillDefaults[T any](dst *T, def T) {
	fill(reflect.ValueOf(dst).Elem(), reflect.ValueOf(def))
}

func fill(dst, def reflect.Value) {
	for i := 0; i < dst.NumField(); i++ {
		f := dst.Field(i)
		if !f.CanSet() {
			continue
		}
		if f.Kind() == reflect.Struct {
			fill(f, def.Field(i))
			continue
		}
		if f.IsZero() {
			f.Set(def.Field(i))
		}
	}
}
