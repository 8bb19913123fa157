// Package netconf is what gingham's two CNI plugins (gingham and
// gingham-ipam) share in reading a network configuration: the keys the CNI
// spec, libcni and container runtimes put into every plugin's configuration,
// the refusal of every other key a plugin does not read, the settings both
// plugins read (Calico's spellings: nodename, log_level, log_file_path,
// kubernetes.kubeconfig), and the logger those settings describe.
//
// Invariants, and the failures they prevent:
//   - A plugin accepts exactly the keys of the struct it decodes into (found
//     by reflection on its json tags) plus the standard ones, so a key can be
//     accepted only if a field holds it: a misspelt or foreign key (Calico's
//     "datastore_type", a camelCase "stateDir" where "state_dir" is meant) is
//     an error naming the key, never silently ignored. This is how the
//     shipped conflist once put the kubeconfig where no plugin read it.
//   - The logger writes only where log_file_path says (its directory is
//     created) or, without it, to stderr; nothing else in a plugin logs.
package netconf
