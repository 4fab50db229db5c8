"""The world and its drawing: skeleton, actors, actions, the pose grammar's units, scenes, captions, the drawing
function and the exemplar sets. Imports nothing else of :mod:`stickworld`; every other subpackage builds on it."""
