//! Reading history: iterate over a file set in order, oldest to newest (every rotated
//! generation, compressed or not, then the live file), from a position.
