// Flux's turn state machine (docs/api.md, Turn-taking), as the tests check it: each
// turn is StartOfTurn, then Updates, optionally EagerEndOfTurn followed by TurnResumed
// (and more Updates) or by the EndOfTurn; turn_index starts at 0 and goes up by one
// after each EndOfTurn. Shared by the stand-in, live and browser tests.

/**
 * Returns the first violation of Flux's order in events ([{event, turnIndex}], in
 * the order received) as a message, or "" when there is none. allowOpenTurn: the
 * last turn may lack its EndOfTurn (the stream was cut).
 */
export function fluxOrderError(events, { allowOpenTurn = false } = {}) {
  let phase = "between"; // between | ongoing | awaiting (EagerEndOfTurn sent)
  let index = 0;
  const at = (i, e) => `event ${i} (${e.event}, turn ${e.turnIndex}) after ${phase === "between" ? "the end of a turn" : phase === "awaiting" ? "EagerEndOfTurn" : "StartOfTurn/Update/TurnResumed"}`;
  for (let i = 0; i < events.length; i++) {
    const e = events[i];
    if (e.turnIndex !== index) return `${at(i, e)}: turn_index ${e.turnIndex}, want ${index}`;
    const ok = {
      between: { StartOfTurn: "ongoing" },
      ongoing: { Update: "ongoing", EagerEndOfTurn: "awaiting", EndOfTurn: "between" },
      awaiting: { TurnResumed: "ongoing", EndOfTurn: "between" },
    }[phase][e.event];
    if (!ok) return `${at(i, e)}: not in Flux's order`;
    phase = ok;
    if (phase === "between") index++;
  }
  if (phase !== "between" && !allowOpenTurn) return `the stream ended inside turn ${index} (no EndOfTurn)`;
  return "";
}
