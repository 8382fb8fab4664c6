//! Runs the user's function on the first items and measures it.
