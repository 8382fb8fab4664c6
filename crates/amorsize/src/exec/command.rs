//! Shell commands as workers (`amorsize run`).
