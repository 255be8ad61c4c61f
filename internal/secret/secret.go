// Package secret encrypts stored credentials with AES-256-GCM.
//
// A sealed value is: version byte | key id (4 bytes) | nonce | ciphertext.
// The key id lets a later key rotation tell which key sealed a value; the
// caller's additional data (the grant id) binds a value to its row so that
// a sealed password cannot be moved to another grant.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

const (
	version  = 1
	keyBytes = 32
	// KeyFile is the name of the generated key inside the data directory.
	KeyFile = "secret.key"
)

// ErrDecrypt means a sealed value could not be opened: wrong key, wrong
// additional data or corruption. It never says which, on purpose.
var ErrDecrypt = errors.New("secret: cannot decrypt stored value")

// Box seals and opens values with one key.
type Box struct {
	aead  cipher.AEAD
	keyID [4]byte
}

// New returns a Box for a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != keyBytes {
		return nil, fmt.Errorf("secret: key must be %d bytes, got %d", keyBytes, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	b := &Box{aead: aead}
	sum := sha256.Sum256(key)
	copy(b.keyID[:], sum[:4])
	return b, nil
}

// Seal encrypts plaintext bound to additionalData.
func (b *Box) Seal(plaintext, additionalData []byte) ([]byte, error) {
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := make([]byte, 0, 1+len(b.keyID)+len(nonce)+len(plaintext)+b.aead.Overhead())
	out = append(out, version)
	out = append(out, b.keyID[:]...)
	out = append(out, nonce...)
	return b.aead.Seal(out, nonce, plaintext, additionalData), nil
}

// Open decrypts a value made by Seal with the same additionalData.
func (b *Box) Open(sealed, additionalData []byte) ([]byte, error) {
	head := 1 + len(b.keyID) + b.aead.NonceSize()
	if len(sealed) < head+b.aead.Overhead() || sealed[0] != version || string(sealed[1:5]) != string(b.keyID[:]) {
		return nil, ErrDecrypt
	}
	plain, err := b.aead.Open(nil, sealed[5:head], sealed[head:], additionalData)
	if err != nil {
		return nil, ErrDecrypt
	}
	return plain, nil
}

// LoadOrCreateKey returns the key in dataDir/secret.key, creating it with
// 0600 permissions (and the directory with 0700) when it does not exist.
// A key file readable by group or others is refused: it guards every
// stored password.
func LoadOrCreateKey(dataDir string) ([]byte, error) {
	path := filepath.Join(dataDir, KeyFile)
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return createKey(dataDir, path)
	}
	if err != nil {
		return nil, fmt.Errorf("secret: read key: %w", err)
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secret: %s is accessible by other users (mode %v); run chmod 600 on it", path, info.Mode().Perm())
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(key) != keyBytes {
		return nil, fmt.Errorf("secret: %s does not hold a base64 32-byte key", path)
	}
	return key, nil
}

func createKey(dataDir, path string) ([]byte, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("secret: create data dir: %w", err)
	}
	key := make([]byte, keyBytes)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	// O_EXCL: two processes starting on one fresh data dir must not each
	// write a different key.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return LoadOrCreateKey(dataDir)
	}
	if err != nil {
		return nil, fmt.Errorf("secret: create key: %w", err)
	}
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return nil, err
	}
	return key, f.Close()
}

// Derive returns a 32-byte key for one purpose (signing cookies, CSRF
// tokens) from the installation's master key, so that one secret serves
// every use without any two uses sharing a key.
func Derive(master []byte, purpose string) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte("orchard key derivation\x00"))
	m.Write([]byte(purpose))
	return m.Sum(nil)
}
