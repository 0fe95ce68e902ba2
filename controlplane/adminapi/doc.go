// Package adminapi serves AdminService (apply, reject, roll back, set mode,
// audit log: the admin role's changes to the mesh, every one audited with
// the caller's identity) and the closed loop's read side that the
// intelligence API delegates to (ListRecommendations, GetRecommendation,
// GetStatus). It maps the optimizer's errors to Connect codes in one place.
// It does not authenticate: the auth middleware puts the caller's identity
// in the context with WithActor.
package adminapi
