//! Predicted against measured: text for people, JSON for programs.
