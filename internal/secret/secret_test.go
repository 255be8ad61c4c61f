package secret

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestSealOpen(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte{7}, 32)
	b, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := b.Seal([]byte("abcd-efgh-ijkl-mnop"), []byte("grant-1"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("abcd")) {
		t.Fatal("sealed value contains plaintext")
	}
	plain, err := b.Open(sealed, []byte("grant-1"))
	if err != nil || string(plain) != "abcd-efgh-ijkl-mnop" {
		t.Fatalf("Open = %q, %v", plain, err)
	}
	if _, err := b.Open(sealed, []byte("grant-2")); err != ErrDecrypt {
		t.Fatalf("other grant's additional data: err = %v, want ErrDecrypt", err)
	}
	other, _ := New(bytes.Repeat([]byte{8}, 32))
	if _, err := other.Open(sealed, []byte("grant-1")); err != ErrDecrypt {
		t.Fatalf("other key: err = %v, want ErrDecrypt", err)
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := b.Open(sealed, []byte("grant-1")); err != ErrDecrypt {
		t.Fatalf("tampered: err = %v, want ErrDecrypt", err)
	}
	if _, err := b.Open(sealed[:3], nil); err != ErrDecrypt {
		t.Fatalf("short: err = %v, want ErrDecrypt", err)
	}
	again, _ := b.Seal([]byte("abcd-efgh-ijkl-mnop"), []byte("grant-1"))
	if bytes.Equal(again, sealed) {
		t.Fatal("two seals of one value are equal: nonce reused")
	}
	if _, err := New(key[:16]); err == nil {
		t.Fatal("New accepted a 16-byte key")
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	k1, err := LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Fatalf("key file mode %v, want 0600", perm)
	}
	k2, err := LoadOrCreateKey(dir)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("second load: %v, same key %v", err, bytes.Equal(k1, k2))
	}
	if err := os.Chmod(filepath.Join(dir, KeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(dir); err == nil {
		t.Fatal("world-readable key accepted")
	}
	if err := os.WriteFile(filepath.Join(dir, KeyFile), []byte("not base64!"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, KeyFile), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(dir); err == nil {
		t.Fatal("garbage key accepted")
	}
}
