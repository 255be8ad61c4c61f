package service

import (
	"context"

	"github.com/orchard-mail/orchard/internal/store"
)

// Grant notifications: grant.created, grant.updated and grant.expired are
// change rows like any other, which the webhook dispatcher turns into
// deliveries (a grant.deleted cannot be one: the grant's rows go with it).

// recordGrantChange writes a grant change row. A failure is logged, not
// returned: the grant change itself has happened.
func (s *Service) recordGrantChange(ctx context.Context, grantID, action string) {
	err := s.store.ApplyMailBatch(context.WithoutCancel(ctx), &store.MailBatch{GrantID: grantID,
		Changes: []store.Change{{GrantID: grantID, ObjectType: "grant", ObjectID: grantID, Action: action}}})
	if err != nil {
		s.log.Warn("record grant change", "grant_id", grantID, "action", action, "error", err)
	}
	s.notifyWebhooks()
}

// ExpireGrant marks a grant invalid because its provider refused its
// login (an app-specific password revoked, e.g. after an Apple ID password
// change): its sync stops and grant.expired is recorded once.
// Re-authenticating the same account revives the same grant id.
func (s *Service) ExpireGrant(ctx context.Context, grantID string) error {
	g, err := s.store.GrantByID(ctx, grantID)
	if err != nil {
		return storeErr(err, "grant "+grantID)
	}
	if g.Status == GrantInvalid {
		return nil
	}
	g.Status = GrantInvalid
	g.UpdatedAt = s.now()
	if err := s.store.UpdateGrant(context.WithoutCancel(ctx), g); err != nil {
		return err
	}
	s.log.Info("grant expired: the provider refused its login", "grant_id", g.ID, "provider", g.Provider)
	s.recordGrantChange(ctx, g.ID, "expired")
	s.grantChanged(g.ID)
	return nil
}
