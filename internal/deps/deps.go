package main
import (
 _ "github.com/emersion/go-imap/v2/imapclient"
 _ "github.com/emersion/go-imap/v2/imapserver/imapmemserver"
 _ "github.com/emersion/go-smtp"
 _ "github.com/emersion/go-sasl"
 _ "github.com/emersion/go-message"
 _ "modernc.org/sqlite"
 _ "github.com/jackc/pgx/v5/stdlib"
)
func main(){}
