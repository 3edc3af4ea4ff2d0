// Stripe's Payment Element, for saving a card with a SetupIntent, and the bank's confirmation step of a
// first payment (StripePaymentAction). The card data goes from this browser to
// Stripe only: the portal's server and its state only ever see the SetupIntent's client secret (going in)
// and the saved payment method's id (coming out). 3-D Secure and other `requires_action` steps are
// completed here by `confirmSetup`.
import React, { useEffect, useMemo, useState } from "react";
// The "pure" entry loads Stripe.js only when loadStripe is called (Stripe mode), not when the page loads.
import { loadStripe } from "@stripe/stripe-js/pure";
import { Elements, PaymentElement, useElements, useStripe } from "@stripe/react-stripe-js";

const loaded = {};
const stripeFor = (key) => {
  // A failed load (blocked, offline) is not kept: the next use tries again.
  if (!loaded[key]) loaded[key] = loadStripe(key).catch((error) => { delete loaded[key]; throw error; });
  return loaded[key];
};

function SetupForm({ onSaved, onError, submitLabel }) {
  const stripe = useStripe();
  const elements = useElements();
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState("");

  const submit = async (event) => {
    event.preventDefault();
    if (!stripe || !elements || busy) return;
    setBusy(true);
    setMessage("");
    const { error, setupIntent } = await stripe.confirmSetup({ elements, redirect: "if_required" });
    setBusy(false);
    if (error) {
      setMessage(error.message || "The card could not be saved.");
      if (onError) onError(error.message || "");
      return;
    }
    if (setupIntent && setupIntent.status === "succeeded") {
      const pm = setupIntent.payment_method;
      if (onSaved) onSaved(typeof pm === "string" ? pm : pm && pm.id);
      return;
    }
    const text = "The card could not be confirmed. Try again or use another card.";
    setMessage(text);
    if (onError) onError(text);
  };

  return (
    <form onSubmit={submit} className="stripe-setup-form">
      <PaymentElement />
      {message ? <p role="alert" className="stripe-setup-error">{message}</p> : null}
      <button type="submit" disabled={!stripe || busy} className="stripe-setup-submit" aria-busy={busy}>
        {busy ? "Saving…" : submitLabel || "Save card"}
      </button>
    </form>
  );
}

export function StripeSetup({ publishableKey, clientSecret, onSaved, onError, submitLabel }) {
  const stripePromise = useMemo(() => (publishableKey ? stripeFor(publishableKey) : null), [publishableKey]);
  if (!stripePromise || !clientSecret) return null;
  return (
    <Elements stripe={stripePromise} options={{ clientSecret }} key={clientSecret}>
      <SetupForm onSaved={onSaved} onError={onError} submitLabel={submitLabel} />
    </Elements>
  );
}

// A first payment that the bank wants confirmed (3-D Secure): Stripe.js shows the bank's step in its own
// window (handleNextAction). Renders nothing; answers once per client secret with "" or Stripe's message. The
// server then looks at the payment itself: this answer only says that the step is over.
export function StripePaymentAction({ publishableKey, clientSecret, onDone }) {
  useEffect(() => {
    if (!publishableKey || !clientSecret) return undefined;
    let current = true;
    const finish = (message) => { if (current && onDone) onDone(message); };
    stripeFor(publishableKey)
      .then((stripe) => stripe.handleNextAction({ clientSecret }))
      .then((result) => finish(result && result.error ? result.error.message || "The payment was not confirmed." : ""))
      .catch(() => finish("The payment could not be confirmed."));
    return () => { current = false; };
  }, [publishableKey, clientSecret]);
  return null;
}
