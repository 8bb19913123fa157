package main

import (
	"context"
	"errors"
)

func (r *runner) b6(ctx context.Context) error  { return errors.New("not yet") }
func (r *runner) b10(ctx context.Context) error { return errors.New("not yet") }
