#pragma once

#include "kube/Kubeconfig.h"

// A check of Kubeconfig::toYaml() that the kubeconfig and config targets share.

namespace lamplighter::fuzz {

// Reads the YAML of `kubeconfig` back with yaml-cpp and requires every name, server, token and
// CA to come back unchanged. Names and the token must be strings to YAML 1.1 readers too, such
// as the one in kubectl, which take a plain 123, true or null for another type.
void checkKubeconfigRoundTrip(const Kubeconfig &kubeconfig);

} // namespace lamplighter::fuzz
