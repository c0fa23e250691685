//! Three pre-allocated sets of state buffers for a step that writes its next state into buffers
//! it does not allocate (the host's fused update on the CPU; ONNX Runtime's outputs bound to
//! device buffers on CUDA): the current state, the one before it, and a spare the next step
//! writes into. This is the accept / roll-back rule of [`super::StepRunner::step`] without
//! copying and without allocating:
//!
//! - after a step with finite losses: previous ← current, current ← the spare just written,
//!   spare ← the old previous;
//! - after a step whose losses are not finite (so the state that went in is bad too): current ←
//!   previous, and there is no previous until the next accepted step.
//!
//! Invariant: the three sets are the buffers given to [`StateSets::from_sets`], for the whole life
//! of the runner (their addresses never change), and `current`, `previous`, `spare` are distinct.
use ndarray::ArrayD;

pub struct StateSets<T = ArrayD<f32>> {
    sets: [Vec<T>; 3],
    current: usize,
    previous: Option<usize>,
}

impl StateSets<ArrayD<f32>> {
    /// Three zeroed sets of host tensors of these shapes.
    pub fn new(shapes: &[Vec<usize>]) -> Self {
        let set = || shapes.iter().map(|s| ArrayD::zeros(s.clone())).collect();
        Self::from_sets([set(), set(), set()])
    }

    /// Copies `state` (the bound shapes, checked by the caller) into the current set; there is
    /// no previous state after this.
    pub fn set(&mut self, state: &[ArrayD<f32>]) {
        for (buffer, value) in self.current_mut().iter_mut().zip(state) {
            buffer.assign(value);
        }
    }
}

impl<T> StateSets<T> {
    /// Three sets of buffers of the same shapes; the first is current.
    pub fn from_sets(sets: [Vec<T>; 3]) -> Self {
        StateSets {
            sets,
            current: 0,
            previous: None,
        }
    }

    /// Where every buffer of the three sets lives, `address` giving a buffer's (for checking
    /// that nothing is reallocated).
    pub fn addresses(&self, address: impl Fn(&T) -> usize) -> Vec<usize> {
        self.sets.iter().flatten().map(address).collect()
    }

    pub fn current(&self) -> &[T] {
        &self.sets[self.current]
    }

    /// The current set, to be overwritten with a new state: there is no previous state after
    /// this.
    pub fn current_mut(&mut self) -> &mut [T] {
        self.previous = None;
        &mut self.sets[self.current]
    }

    fn spare_index(&self) -> usize {
        (0..3)
            .find(|&i| i != self.current && Some(i) != self.previous)
            .expect("three sets, at most two in use")
    }

    /// The current set to read and the spare to write the next state into.
    pub fn current_and_spare(&mut self) -> (&[T], &mut [T]) {
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
        let addresses = sets.addresses(|a| a.as_ptr() as usize);
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
        assert_eq!(
            sets.addresses(|a| a.as_ptr() as usize),
            addresses,
            "no buffer was reallocated"
        );
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
