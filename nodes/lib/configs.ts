import type { Node, NodeAPI } from 'node-red';

/**
 * The config node a node points at. With none chosen, the only one of that type in the flows is taken:
 * a gallery added from the match node's "+" starts with no models although the flow has exactly one
 * models configuration, and choosing it twice is a trap, not a decision. With several, none is guessed.
 */
export function chosenConfig<T extends Node>(RED: NodeAPI, id: string | undefined, type: string): T | null {
  if (id) return RED.nodes.getNode(id) as T | null;
  const found: string[] = [];
  RED.nodes.eachNode((n) => {
    if (n.type === type && !(n as { d?: boolean }).d) found.push(n.id);
  });
  return found.length === 1 ? (RED.nodes.getNode(found[0]) as T | null) : null;
}
