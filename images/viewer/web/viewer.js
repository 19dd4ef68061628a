// The researcher's side of a restricted session: noVNC's RFB client on the viewer's
// websocket, with clipboard off on this side too (nothing the viewer sends is put on
// this machine's clipboard, and this page never sends clipboard text to the viewer).
import RFB from './core/rfb.js';

// This page lives at /user/<name>/<project>/viewer/.
const parts = window.location.pathname.split('/');
const project = decodeURIComponent(parts[3] || '');
document.getElementById('project').textContent = project;
document.title = `Restricted session: ${project}`;
const status = document.getElementById('status');

const base = window.location.pathname.replace(/[^/]*$/, '');
const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws';
const rfb = new RFB(
    document.getElementById('screen'),
    `${scheme}://${window.location.host}${base}websockify`,
    { wsProtocols: ['binary'] },
);
rfb.scaleViewport = true;
rfb.resizeSession = false;
rfb.focusOnClick = true;
// The server sends no clipboard (x11vnc -noclipboard -nosel); should anything arrive
// it is dropped here, never written to this machine's clipboard.
rfb.addEventListener('clipboard', (event) => event.stopImmediatePropagation());
rfb.addEventListener('connect', () => {
    status.textContent = 'connected';
    document.body.dataset.state = 'connected';
});
rfb.addEventListener('disconnect', (event) => {
    status.textContent = event.detail.clean ? 'disconnected' : 'connection lost';
    document.body.dataset.state = 'disconnected';
});
