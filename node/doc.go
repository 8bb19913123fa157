// Package node is gingham-node's integrator: it turns the agent's
// configuration into a running agent, watches the API objects it needs,
// computes the desired routes and BGP state and hands them to felix and bgp.
package node
