// A local stand-in for Stripe.js (https://js.stripe.com/…), served by the e2e test instead of the network.
// It implements what @stripe/react-stripe-js and the Payment Element use, renders a plain card field where
// Stripe's iframe would be, and records what the page asked of it in window.__stripeDouble.
(function () {
  const record = (window.__stripeDouble = { keys: [], clientSecrets: [], confirmed: [], mounted: 0, actions: [] });
  function Stripe(key) {
    record.keys.push(key);
    let paymentElement = null;
    const elements = {
      create(type, options) {
        const handlers = {};
        paymentElement = {
          mount(node) {
            const target = typeof node === "string" ? document.querySelector(node) : node;
            target.innerHTML =
              '<label style="display:block">Card number (test double)' +
              '<input id="double-card" autocomplete="off" style="display:block;width:100%"></label>';
            record.mounted += 1;
            setTimeout(() => (handlers.ready || []).forEach((cb) => cb({ elementType: type })), 0);
          },
          on(event, cb) { (handlers[event] = handlers[event] || []).push(cb); return paymentElement; },
          off() { return paymentElement; },
          update() {},
          destroy() {},
          unmount() {},
          collapse() {},
          focus() {},
          blur() {},
          clear() {},
        };
        return paymentElement;
      },
      getElement() { return paymentElement; },
      update() {},
      fetchUpdates() { return Promise.resolve({}); },
      submit() { return Promise.resolve({}); },
    };
    return {
      elements(options) { record.clientSecrets.push(options && options.clientSecret); return elements; },
      confirmSetup({ elements: used }) {
        const card = document.getElementById("double-card");
        record.confirmed.push({ clientSecret: record.clientSecrets[record.clientSecrets.length - 1],
                                withElements: used === elements });
        if (!card || card.value.replace(/\s/g, "") !== "4242424242424242") {
          return Promise.resolve({ error: { type: "card_error", message: "Your card number is incorrect." } });
        }
        // The payment method the test prepared at the fake Stripe server (what Stripe would have created).
        return Promise.resolve({ setupIntent: { status: "succeeded", payment_method: window.__stripeDoublePm } });
      },
      // The bank's 3-D Secure step of a payment: the customer passes it unless the test set
      // window.__stripeDoubleBankSays = "no". Like Stripe.js, the browser tells the fake Stripe server itself
      // (localstripe's hook for it, at window.__stripeDoubleApi), with the publishable key.
      handleNextAction({ clientSecret }) {
        record.actions.push(clientSecret);
        const success = window.__stripeDoubleBankSays !== "no";
        const intent = clientSecret.split("_secret_")[0];
        const body = new URLSearchParams({ client_secret: clientSecret, success: String(success), key });
        return fetch(`${window.__stripeDoubleApi}/v1/payment_intents/${intent}/_authenticate`, { method: "POST", body })
          .then((response) => response.json())
          .then((paymentIntent) => (success ? { paymentIntent } : { error: {
            type: "card_error", code: "payment_intent_authentication_failure",
            message: "We are unable to authenticate your payment method." } }));
      },
      createToken() {}, createPaymentMethod() {}, confirmCardPayment() {},
      registerAppInfo() {}, _registerWrapper() {},
    };
  }
  Stripe.version = "endive";
  window.Stripe = Stripe;
})();
