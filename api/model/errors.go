package model

import (
	"errors"
	"fmt"
)

// FieldError is a validation failure of one field.
type FieldError struct {
	Field  string // e.g. spec.cidr
	Value  any
	Reason string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("error with field %s = '%v' (%s)", e.Field, e.Value, e.Reason)
}

// ErrInvalid is wrapped by every validation error, for errors.Is.
var ErrInvalid = errors.New("invalid")

// Is makes every FieldError match ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

func fieldErr(field string, value any, format string, a ...any) error {
	return &FieldError{Field: field, Value: value, Reason: fmt.Sprintf(format, a...)}
}
