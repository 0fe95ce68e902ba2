// Package deploy holds the Kubernetes manifests of OmniNode Bridge
// (kustomize bases, components, overlays and examples; see README.md) and
// the test that renders every kustomization with the kustomize Go library
// and decodes every object strictly into its Kubernetes type. It has no
// code of its own.
package deploy
