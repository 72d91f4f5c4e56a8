package pisim

import "testing"

func TestRackOf(t *testing.T) {
	for _, tc := range []struct {
		kind    string
		n       int
		models  []int
		wantErr bool
	}{
		{"rpi4", 3, []int{4, 4, 4}, false},
		{"rpi5", 2, []int{5, 5}, false},
		{"mixed", 5, []int{4, 5, 4, 5, 4}, false},
		{"rpi3", 1, nil, true},
		{"mixed", 0, nil, true},
	} {
		pis, err := RackOf(tc.n, tc.kind, 1)
		if (err != nil) != tc.wantErr {
			t.Errorf("RackOf(%d, %s) error = %v, want error %v", tc.n, tc.kind, err, tc.wantErr)
			continue
		}
		seen := map[uint32]bool{}
		for i, p := range pis {
			if p.Model != tc.models[i] {
				t.Errorf("%s[%d] model %d, want %d", tc.kind, i, p.Model, tc.models[i])
			}
			if seen[p.Serial] {
				t.Errorf("%s: serial %08x twice", tc.kind, p.Serial)
			}
			seen[p.Serial] = true
		}
	}
}
