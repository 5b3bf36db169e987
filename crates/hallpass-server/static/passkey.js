// The admin page's one script: passkey ceremonies, which only a browser's
// navigator.credentials can perform. Every other part of the page works without script.
//
// A button with data-passkey="login" (passwordless sign-in), "register" (add a passkey)
// or "factor" (answer a second-factor challenge) sits in a form with hidden fields `flow`
// (not for "factor") and `credential`. A click gets the options (from data-start, a
// same-origin POST answering {flow, options}, or from data-options), asks the browser's
// authenticator, puts the answer in the hidden field as JSON and submits the form; the
// server verifies everything. The page's error element (data-passkey-error) says what went
// wrong in the browser.
(() => {
  'use strict';

  const fromB64u = (s) => {
    const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4);
    return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer;
  };
  const toB64u = (buf) => {
    let bin = '';
    for (const b of new Uint8Array(buf)) bin += String.fromCharCode(b);
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  };
  const ids = (list) => (list || []).map((c) => ({ ...c, id: fromB64u(c.id) }));

  const creation = (o) => {
    const pk = { ...o.publicKey };
    pk.challenge = fromB64u(pk.challenge);
    pk.user = { ...pk.user, id: fromB64u(pk.user.id) };
    pk.excludeCredentials = ids(pk.excludeCredentials);
    return { publicKey: pk };
  };
  const request = (o) => {
    const pk = { ...o.publicKey };
    pk.challenge = fromB64u(pk.challenge);
    pk.allowCredentials = ids(pk.allowCredentials);
    return { publicKey: pk };
  };
  // Only the unsigned `credProps` of the extension results is passed on: the server reads
  // nothing else, and other browsers' extension values need not parse.
  const extensions = (c) => {
    const r = c.getClientExtensionResults ? c.getClientExtensionResults() : {};
    return r.credProps ? { credProps: { rk: !!r.credProps.rk } } : {};
  };
  const registration = (c) => ({
    id: c.id,
    rawId: toB64u(c.rawId),
    type: c.type,
    response: {
      attestationObject: toB64u(c.response.attestationObject),
      clientDataJSON: toB64u(c.response.clientDataJSON),
      transports: c.response.getTransports ? c.response.getTransports() : [],
    },
    extensions: extensions(c),
  });
  const assertion = (c) => ({
    id: c.id,
    rawId: toB64u(c.rawId),
    type: c.type,
    response: {
      authenticatorData: toB64u(c.response.authenticatorData),
      clientDataJSON: toB64u(c.response.clientDataJSON),
      signature: toB64u(c.response.signature),
      userHandle: c.response.userHandle ? toB64u(c.response.userHandle) : null,
    },
    extensions: {},
  });

  const say = (text) => {
    const el = document.querySelector('[data-passkey-error]');
    if (el) {
      el.textContent = text;
      el.hidden = false;
    }
  };
  const words = (e) => {
    if (e && e.name === 'NotAllowedError') return 'The passkey prompt was cancelled or timed out. Try again.';
    if (e && e.name === 'InvalidStateError') return 'This authenticator already holds a passkey for this account.';
    if (e && e.name === 'SecurityError') {
      return 'This browser refused passkeys for this address. Open the page at its public address (or at localhost).';
    }
    return `The passkey did not work: ${e && e.message ? e.message : e}`;
  };

  const start = async (form, url) => {
    const body = new URLSearchParams();
    const csrf = form.querySelector('input[name="csrf"]');
    if (csrf) body.set('csrf', csrf.value);
    const res = await fetch(url, { method: 'POST', body, credentials: 'same-origin' });
    if (!res.ok) throw new Error(`the server answered ${res.status}`);
    return res.json();
  };

  const run = async (button) => {
    const form = button.closest('form');
    const kind = button.dataset.passkey;
    let options;
    if (button.dataset.start) {
      const started = await start(form, button.dataset.start);
      form.querySelector('input[name="flow"]').value = started.flow;
      options = started.options;
    } else {
      options = JSON.parse(button.dataset.options);
    }
    const credential =
      kind === 'register'
        ? registration(await navigator.credentials.create(creation(options)))
        : assertion(await navigator.credentials.get(request(options)));
    form.querySelector('input[name="credential"]').value = JSON.stringify(credential);
    form.submit();
  };

  const buttons = document.querySelectorAll('button[data-passkey]');
  if (!window.PublicKeyCredential || !window.isSecureContext) {
    for (const b of buttons) b.disabled = true;
    if (buttons.length) say('This browser cannot use passkeys here (they need HTTPS or localhost).');
    return;
  }
  for (const button of buttons) {
    button.addEventListener('click', (event) => {
      event.preventDefault();
      button.disabled = true;
      run(button).catch((e) => {
        button.disabled = false;
        say(words(e));
      });
    });
  }
})();
