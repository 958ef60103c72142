// The demo page's only script (no inline script: the page runs under a strict CSP). It takes
// the token from the URL fragment (never sent to a server) or from the form, then starts the
// widget with it and opens the chat.
'use strict';

function start(token, customerId) {
  ChatWidget.init({ token: token, customerId: customerId });
  ChatWidget.open();
  document.getElementById('state').textContent = 'Widget started for ' + customerId + '.';
  // Forget the token in the address bar, so it is not bookmarked or shared by accident.
  history.replaceState(null, '', location.pathname);
}

document.getElementById('start').addEventListener('submit', function (event) {
  event.preventDefault();
  start(document.getElementById('token').value.trim(), document.getElementById('customer').value.trim());
});

var fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.get('token')) {
  start(fragment.get('token'), fragment.get('customerId') || 'demo-customer');
}
