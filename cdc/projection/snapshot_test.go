package projection

import "testing"

func TestSnapshotVisible(t *testing.T) {
	for _, tc := range []struct {
		snap string
		xid  uint32
		want bool
	}{
		{"100:105:", 99, true},              // before xmin
		{"100:105:", 104, true},             // committed before the snapshot
		{"100:105:102", 102, false},         // in progress
		{"100:105:", 105, false},            // not yet completed when taken
		{"4294967396:4294967400:", 5, true}, // epoch 1, xid 5 = 4294967301 < xmin
		{"4294967396:4294967400:", 104, false},
		{"4294967396:4294967400:", 103, true},
		{"4294967290:4294967300:4294967295", 4294967295, false}, // across the epoch boundary
		{"4294967290:4294967300:", 4294967294, true},
	} {
		s, err := parseSnapshot(tc.snap)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.visible(tc.xid); got != tc.want {
			t.Errorf("snapshot %s visible(%d) = %v, want %v", tc.snap, tc.xid, got, tc.want)
		}
	}
	for _, bad := range []string{"", "1:2", "a:2:", "1:2:x"} {
		if _, err := parseSnapshot(bad); err == nil {
			t.Errorf("parseSnapshot(%q) accepted it", bad)
		}
	}
}
