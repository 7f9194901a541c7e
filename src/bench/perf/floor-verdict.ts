/**
 * What the Node floor (node-floor-relay.ts) says about a goal the coordinator is judged on:
 *   met           the coordinator meets it;
 *   out of reach  the coordinator misses it and so does the floor: no Node relay in this position
 *                 meets it on this machine (the next-best design is the floor itself, or a relay
 *                 outside Node);
 *   reachable     the coordinator misses it, the floor meets it: the gap is the coordinator's own
 *                 work (parsing, admission, routing, framing).
 * Judged on the numbers of one run; a goal the floor only just meets or misses reads as noisy.
 */
export type FloorVerdict = "met" | "out of reach" | "reachable";

export function floorVerdict(coordinatorMeets: boolean, floorMeets: boolean): FloorVerdict {
  if (coordinatorMeets) return "met";
  return floorMeets ? "reachable" : "out of reach";
}

/** One sentence for a section's notes: the goal, both values, the verdict and what it means. */
export function floorSentence(goal: string, coordinator: string, floor: string, v: FloorVerdict): string {
  switch (v) {
    case "met":
      return `${goal}: met (coordinator ${coordinator}; Node floor ${floor}).`;
    case "out of reach":
      return `${goal}: out of reach for Node on this machine: the Node floor, which only pipes bytes, is already at ${floor} (coordinator ${coordinator}); the next-best design forwards bytes as unparsed as the floor does, or takes the data path out of Node.`;
    case "reachable":
      return `${goal}: reachable: the Node floor is at ${floor}, the coordinator at ${coordinator}; the gap is the coordinator's own work.`;
  }
}
