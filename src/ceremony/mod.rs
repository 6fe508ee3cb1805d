//! Ceremony scripts: parse strictly, validate the whole plan, then run it as a state
//! machine (`update(&mut State, Event) -> Vec<Effect>`); the effect runner is the only I/O.
