//! Three pre-allocated sets of state buffers for a step whose update is computed by the host:
//! the current state, the one before it, and a spare the next step writes into. This is the
//! accept / roll-back rule of [`super::StepRunner::step`] without copying and without allocating:
//!
//! - after a step with finite losses: previous ← current, current ← the spare just written,
//!   spare ← the old previous;
//! - after a step whose losses are not finite (so the state that went in is bad too): current ←
//!   previous, and there is no previous until the next accepted step.
//!
//! Invariant: the three sets are the buffers allocated by [`StateSets::new`], for the whole life
//! of the runner (their addresses never change), and `current`, `previous`, `spare` are distinct.
use ndarray::ArrayD;

pub struct StateSets {
    sets: [Vec<ArrayD<f32>>; 3],
    current: usize,
    previous: Option<usize>,
}

impl StateSets {
    /// Three zeroed sets of tensors of these shapes.
    pub fn new(shapes: &[Vec<usize>]) -> Self {
        let set = || shapes.iter().map(|s| ArrayD::zeros(s.clone())).collect();
        StateSets {
            sets: [set(), set(), set()],
            current: 0,
            previous: None,
        }
    }

    /// Copies `state` (the bound shapes, checked by the caller) into the current set; there is
    /// no previous state after this.
    pub fn set(&mut self, state: &[ArrayD<f32>]) {
        for (buffer, value) in self.sets[self.current].iter_mut().zip(state) {
            buffer.assign(value);
        }
        self.previous = None;
    }

    pub fn current(&self) -> &[ArrayD<f32>] {
        &self.sets[self.current]
    }

    fn spare_index(&self) -> usize {
        (0..3)
            .find(|&i| i != self.current && Some(i) != self.previous)
            .expect("three sets, at most two in use")
    }

    /// The current set to read and the spare to write the next state into.
    pub fn current_and_spare(&mut self) -> (&[ArrayD<f32>], &mut [ArrayD<f32>]) {
        let (c, s) = (self.current, self.spare_index());
        let [a, b, d] = &mut self.sets;
        let mut refs = [Some(a), Some(b), Some(d)];
        let current = refs[c].take().expect("distinct");
        let spare = refs[s].take().expect("distinct");
        (current.as_slice(), spare.as_mut_slice())
    }

    /// After a step: accept the spare (written by the caller) when `finite`, else roll back.
    pub fn advance(&mut self, finite: bool) {
        if finite {
            let spare = self.spare_index();
            self.previous = Some(self.current);
            self.current = spare;
        } else if let Some(p) = self.previous.take() {
            self.current = p;
        }
    }

    /// Where each set's buffers live (for checking that nothing is reallocated).
    #[cfg(test)]
    pub fn addresses(&self) -> Vec<*const f32> {
        self.sets.iter().flatten().map(|a| a.as_ptr()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(sets: &mut StateSets, value: f32) {
        let (_, spare) = sets.current_and_spare();
        spare.iter_mut().for_each(|a| a.fill(value));
    }

    #[test]
    fn accepted_steps_rotate_and_a_bad_step_returns_to_the_state_before_it() {
        let mut sets = StateSets::new(&[vec![2, 3], vec![3]]);
        let addresses = sets.addresses();
        sets.set(&[
            ArrayD::from_elem(vec![2, 3], 1.0),
            ArrayD::from_elem(vec![3], 1.0),
        ]);
        for step in 2..=6 {
            filled(&mut sets, step as f32);
            sets.advance(true);
            assert_eq!(sets.current()[0][[1, 2]], step as f32);
        }
        // Step 7's losses (of state 6) are not finite: back to state 5.
        filled(&mut sets, 7.0);
        sets.advance(false);
        assert_eq!(sets.current()[1][[0]], 5.0);
        // Another bad step right away has no earlier state to go back to: state 5 stays.
        filled(&mut sets, 8.0);
        sets.advance(false);
        assert_eq!(sets.current()[1][[0]], 5.0);
        filled(&mut sets, 9.0);
        sets.advance(true);
        assert_eq!(sets.current()[0][[0, 0]], 9.0);
        assert_eq!(sets.addresses(), addresses, "no buffer was reallocated");
    }

    #[test]
    fn setting_the_state_forgets_the_previous_one() {
        let mut sets = StateSets::new(&[vec![1]]);
        filled(&mut sets, 2.0);
        sets.advance(true);
        sets.set(&[ArrayD::from_elem(vec![1], 3.0)]);
        sets.advance(false);
        assert_eq!(sets.current()[0][[0]], 3.0);
    }
}
