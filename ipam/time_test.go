package ipam

import "time"

var testTime = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
